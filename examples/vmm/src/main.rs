//! `vmm`: the viridian reference VMM on Linux KVM.
//!
//! It boots a 64-bit ELF guest (by default the built-in test guest from `examples/guest`)
//! directly in long mode, and runs it until the guest powers off:
//!
//! 1. map guest RAM ([`memory`]) and copy the guest's `PT_LOAD` segments into it ([`elf`]);
//! 2. write identity-mapped page tables and a GDT ([`long_mode`], placed per [`layout`]);
//! 3. create the KVM VM, the in-kernel irqchip, the synthetic-MSR exits and the vCPU with the
//!    host's CPUID, its hypervisor leaves replaced by Hyper-V's ([`kvm`], [`hyperv`]);
//! 4. load the long-mode register state, `rip` at the ELF entry;
//! 5. run the exit loop ([`exit`]): port I/O goes to the [`devices`] (COM1 serial → stdout,
//!    the power-off port → stop), synthetic MSR accesses and the hypercall port to [`hyperv`];
//!    anything else stops the VM with an error and a register dump.
//!
//! Exit status: 0 when the guest powers off with status 0, 1 when the VMM fails (KVM missing,
//! an unexpected exit, ...), 2 for a bad command line, 3 when the guest powers off with a
//! non-zero status.

mod complete;
mod devices;
mod elf;
mod emulate;
mod exit;
mod guest_memory;
mod hyperv;
mod kvm;
mod layout;
mod long_mode;
mod memory;
mod net;
mod regs;
mod storage;
mod tick;
mod timeline;

use std::error::Error;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use devices::pm::{PowerOff, POWER_OFF_PORT};
use devices::serial::{Serial, COM1_BASE, PORT_COUNT};
use devices::PortBus;
use elf::ElfImage;
use hyperv::HyperV;
use kvm::{Vm, VmOptions};
use long_mode::BootCpu;
use memory::GuestMemory;
use timeline::{GuestConsole, Timeline};
use vmbus_ring::channel::VmbusVersion;

/// The test guest built from `examples/guest` by `build.rs`.
static BUILTIN_GUEST: &[u8] = include_bytes!(env!("VIRIDIAN_GUEST_ELF"));

/// Guest RAM size when `--mem` is not given, in MiB.
const DEFAULT_MEM_MIB: u64 = 64;

const USAGE: &str = "\
usage: vmm [options]

Boots a 64-bit ELF guest under KVM in long mode and runs it until it powers off.
The guest's serial output (COM1) goes to stdout.

options:
  --mem <MiB>            guest RAM size in MiB (default 64, 4 to 3072)
  --kvp <key=value>      a key the host writes into the guest's External KVP pool and
                         reads back (repeatable; default HostName and VirtualMachineName)
  --heartbeat-ms <ms>    heartbeat period (default 500)
  --run-ms <ms>          how long to run once the channels are open before asking the
                         guest to shut down (default 2500)
  --probe <n>            port writes in the guest's exit-probe loop (default 2000)
  --vmbus-version <x.y>  newest VMBus version the host accepts (default 5.3)
  --scenario <name>      a negative scenario for the built-in guest: malformed-message,
                         unknown-connection, reserved-synic-bits, gpadl-outside-ram
                         (default: none)
  --disk <path.vhd>      attach this VHD (fixed, dynamic or differencing) as LUN 0 of a
                         synthetic SCSI controller; the built-in guest tests it
  --snapshot <child.avhd>
                         while the guest runs, turn the disk into the parent of this new
                         differencing disk (after --snapshot-after <n> guest writes,
                         default 1); at shutdown keep it, or with --merge merge it back.
                         With a disk, standard input takes host commands:
                         `snapshot [child.avhd]` snapshots the running disk now
  --deploy <image.wim:n> create --disk as a new dynamic VHD, format it FAT32 and apply WIM
                         image n onto it; the built-in guest lists it and checks hashes
  --net                  run two built-in guests at once, each with a synthetic network
                         adapter on one vswitch-core switch; guest a pings guest b
  --vlans <a>,<b>        the two adapters' access VLANs (implies --net; default 1,1)
  --guest <path>         boot this ELF64 executable instead of the built-in test guest
  --no-irqchip           do not create KVM's in-kernel interrupt controller; a guest `hlt`
                         then stops the VM with an error instead of sleeping
  --trace                log every vCPU exit to stderr
  -h, --help             show this help

exit status: 0 guest powered off with status 0, 1 VMM error, 2 usage error,
             3 guest powered off with a non-zero status";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    mem_mib: u64,
    guest: Option<PathBuf>,
    irqchip: bool,
    trace: bool,
    kvp: Vec<(String, String)>,
    heartbeat_ms: u64,
    run_ms: u64,
    probe: u64,
    max_version: VmbusVersion,
    scenario: u64,
    disk: Option<PathBuf>,
    snapshot: Option<storage::snapshot::SnapshotPlan>,
    /// Run two guests on one switch (`--net`), their ports on these access VLANs.
    net: Option<(u16, u16)>,
    /// Deploy this WIM image onto a new `--disk` first.
    deploy: Option<(PathBuf, u32)>,
}

/// The negative scenarios of the built-in guest, by name (the guest's `Scenario` numbers).
const SCENARIOS: [(&str, u64); 4] = [
    ("malformed-message", 1),
    ("unknown-connection", 2),
    ("reserved-synic-bits", 3),
    ("gpadl-outside-ram", 4),
];

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Run(Options),
    Help,
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
enum UsageError {
    #[error("unknown option {0:?}")]
    UnknownOption(OsString),
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("--mem takes a whole number of MiB from {min} to {max}, not {value:?}", min = layout::MIN_MEM_MIB, max = layout::MAX_MEM_MIB)]
    BadMemSize { value: OsString },
    #[error("{option} does not take {value:?}")]
    BadValue {
        option: &'static str,
        value: OsString,
    },
}

/// Parses the arguments after the program name.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut options = Options {
        mem_mib: DEFAULT_MEM_MIB,
        guest: None,
        irqchip: true,
        trace: false,
        kvp: Vec::new(),
        heartbeat_ms: 500,
        run_ms: 2500,
        probe: 2000,
        max_version: VmbusVersion::WIN10_V5_3,
        scenario: 0,
        disk: None,
        snapshot: None,
        net: None,
        deploy: None,
    };
    let mut kvp_given = false;
    let (mut snapshot_after, mut merge) = (None, false);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept `--name=value` as well as `--name value`.
        let (name, inline) = match arg.to_str().and_then(|a| a.split_once('=')) {
            Some((name, value)) if name.starts_with("--") => {
                (OsString::from(name), Some(OsString::from(value)))
            }
            _ => (arg, None),
        };
        let mut value = |option: &'static str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(UsageError::MissingValue(option))
        };
        match name.to_str().unwrap_or("") {
            "-h" | "--help" => return Ok(Command::Help),
            "--mem" => {
                let value = value("--mem")?;
                options.mem_mib = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .filter(|mib| (layout::MIN_MEM_MIB..=layout::MAX_MEM_MIB).contains(mib))
                    .ok_or(UsageError::BadMemSize { value })?;
            }
            "--guest" => options.guest = Some(value("--guest")?.into()),
            "--kvp" => {
                let value = value("--kvp")?;
                let pair = value
                    .to_str()
                    .and_then(|v| v.split_once('='))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or(UsageError::BadValue {
                        option: "--kvp",
                        value: value.clone(),
                    })?;
                options.kvp.push((pair.0.to_string(), pair.1.to_string()));
                kvp_given = true;
            }
            name @ ("--heartbeat-ms" | "--run-ms" | "--probe") => {
                let option = match name {
                    "--heartbeat-ms" => "--heartbeat-ms",
                    "--run-ms" => "--run-ms",
                    _ => "--probe",
                };
                let value = value(option)?;
                let n: u64 = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| option == "--probe" || n > 0)
                    .ok_or(UsageError::BadValue { option, value })?;
                match option {
                    "--heartbeat-ms" => options.heartbeat_ms = n,
                    "--run-ms" => options.run_ms = n,
                    _ => options.probe = n,
                }
            }
            "--vmbus-version" => {
                let value = value("--vmbus-version")?;
                options.max_version = value
                    .to_str()
                    .and_then(|v| v.split_once('.'))
                    .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                    .map(|(major, minor)| VmbusVersion(major << 16 | minor))
                    .filter(|v| v.0 >= VmbusVersion::WIN8.0 && v.0 <= VmbusVersion::WIN10_V5_3.0)
                    .ok_or(UsageError::BadValue {
                        option: "--vmbus-version",
                        value,
                    })?;
            }
            "--scenario" => {
                let value = value("--scenario")?;
                options.scenario = SCENARIOS
                    .iter()
                    .find(|(name, _)| value.to_str() == Some(name))
                    .map(|&(_, n)| n)
                    .ok_or(UsageError::BadValue {
                        option: "--scenario",
                        value,
                    })?;
            }
            "--disk" => options.disk = Some(PathBuf::from(value("--disk")?)),
            "--deploy" => {
                let value = value("--deploy")?;
                options.deploy = Some(value.to_str().and_then(storage::deploy::parse_spec).ok_or(
                    UsageError::BadValue {
                        option: "--deploy",
                        value,
                    },
                )?);
            }
            "--net" if inline.is_none() => {
                options.net.get_or_insert((1, 1));
            }
            "--vlans" => {
                let value = value("--vlans")?;
                let pair = value
                    .to_str()
                    .and_then(|v| v.split_once(','))
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .filter(|&(a, b): &(u16, u16)| (1..4095).contains(&a) && (1..4095).contains(&b))
                    .ok_or(UsageError::BadValue {
                        option: "--vlans",
                        value,
                    })?;
                options.net = Some(pair);
            }
            "--snapshot" => {
                let child = PathBuf::from(value("--snapshot")?);
                let plan = options
                    .snapshot
                    .get_or_insert(storage::snapshot::SnapshotPlan {
                        child: PathBuf::new(),
                        after_writes: 1,
                        merge: false,
                    });
                plan.child = child;
            }
            "--snapshot-after" => {
                let value = value("--snapshot-after")?;
                let n =
                    value
                        .to_str()
                        .and_then(|v| v.parse().ok())
                        .ok_or(UsageError::BadValue {
                            option: "--snapshot-after",
                            value,
                        })?;
                snapshot_after = Some(n);
            }
            "--merge" if inline.is_none() => merge = true,
            "--no-irqchip" if inline.is_none() => options.irqchip = false,
            "--trace" if inline.is_none() => options.trace = true,
            _ => return Err(UsageError::UnknownOption(name)),
        }
    }
    if options.deploy.is_some() && options.disk.is_none() {
        return Err(UsageError::BadValue {
            option: "--deploy",
            value: OsString::from("needs --disk NEW.vhd"),
        });
    }
    match options.snapshot.as_mut() {
        Some(plan) => {
            plan.after_writes = snapshot_after.unwrap_or(1);
            plan.merge = merge;
        }
        None if snapshot_after.is_some() || merge => {
            return Err(UsageError::BadValue {
                option: "--snapshot-after/--merge",
                value: OsString::from("given without --snapshot"),
            })
        }
        None => {}
    }
    if !kvp_given {
        options.kvp = vec![
            ("HostName".into(), "viridian-host".into()),
            ("VirtualMachineName".into(), "viridian-demo".into()),
        ];
    }
    Ok(Command::Run(options))
}

/// Everything that can stop the VMM before or while the guest runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum VmmError {
    #[error("cannot read the guest image {path}")]
    ReadGuest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the guest image is not a loadable ELF executable")]
    Elf(#[from] elf::ElfError),
    #[error("cannot load the guest image")]
    Load(#[from] elf::LoadError),
    #[error("cannot set up guest ram")]
    Memory(#[from] memory::MemoryError),
    #[error("cannot register the devices")]
    Devices(#[from] devices::OverlapError),
    #[error("cannot set up the Hyper-V interface")]
    Hyperv(#[from] hyperv::HypervError),
    #[error("cannot set up the KVM virtual machine")]
    Kvm(#[from] kvm::KvmError),
    #[error("cannot open the disk {path}")]
    Disk {
        path: PathBuf,
        #[source]
        source: vhd_format::OpenError,
    },
    #[error("cannot deploy {path}")]
    Deploy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the service timer")]
    Tick(#[source] std::io::Error),
    #[error("the virtual machine stopped")]
    Run(#[from] exit::RunError),
}

impl VmmError {
    /// The register dump to print after the message, if the error carries one.
    fn registers(&self) -> Option<&regs::RegisterDump> {
        match self {
            Self::Run(e) => e.registers(),
            _ => None,
        }
    }
}

/// Which VM of a run this is.
struct VmIdentity {
    timeline: Timeline,
    /// The network adapter: switch, MAC, access VLAN, the guest's role (1: a, 2: b).
    net: Option<(Arc<net::Hub>, [u8; 6], u16, u64)>,
    /// Drive the 5 ms service tick with a process timer (one VM per process only).
    own_tick: bool,
}

/// Boots the guest and runs it to power-off; returns the guest's exit status.
fn run(options: &Options) -> Result<u8, VmmError> {
    run_vm(
        options,
        VmIdentity {
            timeline: Timeline::new(),
            net: None,
            own_tick: true,
        },
    )
}

/// Two guests on one switch, each VM on its own thread; returns the worse exit status.
fn run_pair(options: &Options, vlans: (u16, u16)) -> Result<u8, VmmError> {
    let hub = Arc::new(net::Hub::new());
    let timeline = Timeline::new();
    timeline.host(format_args!(
        "network: one vswitch-core switch, guest a on access VLAN {}, guest b on access VLAN {}",
        vlans.0, vlans.1
    ));
    let spawn = |name: &'static str, last: u8, vlan: u16, role: u64| {
        let identity = VmIdentity {
            timeline: timeline.named(name),
            net: Some((hub.clone(), [0x02, 0, 0, 0, 0, last], vlan, role)),
            own_tick: false,
        };
        let options = options.clone();
        std::thread::Builder::new()
            .name(format!("vm-{name}"))
            .spawn(move || run_vm(&options, identity))
    };
    let spawned = (spawn("a", 0x0a, vlans.0, 1), spawn("b", 0x0b, vlans.1, 2));
    let (Ok(a), Ok(b)) = spawned else {
        return Err(VmmError::Tick(std::io::Error::other(
            "cannot start the VM threads",
        )));
    };
    use std::os::unix::thread::JoinHandleExt;
    let threads = [a.as_pthread_t(), b.as_pthread_t()];
    tick::kick_threads(&threads, std::time::Duration::from_millis(5), || {
        a.is_finished() && b.is_finished()
    })
    .map_err(VmmError::Tick)?;
    let join = |h: std::thread::JoinHandle<Result<u8, VmmError>>| {
        h.join().unwrap_or_else(|_| {
            Err(VmmError::Tick(std::io::Error::other(
                "a VM thread panicked",
            )))
        })
    };
    let (ra, rb) = (join(a), join(b));
    Ok(ra?.max(rb?))
}

/// Boots one guest and runs it to power-off; returns the guest's exit status.
fn run_vm(options: &Options, identity: VmIdentity) -> Result<u8, VmmError> {
    let file;
    let bytes = match &options.guest {
        Some(path) => {
            file = std::fs::read(path).map_err(|source| VmmError::ReadGuest {
                path: path.clone(),
                source,
            })?;
            &file[..]
        }
        None => BUILTIN_GUEST,
    };
    let image = ElfImage::parse(bytes)?;

    let mem_size = options.mem_mib * layout::MIB;
    let memory = GuestMemory::new(mem_size)?;
    image.load(&memory, layout::image_region(mem_size))?;
    long_mode::write_boot_structures(&memory)?;

    let timeline = identity.timeline;
    let mut hyperv = HyperV::new(
        options.trace,
        timeline,
        hyperv::vmbus::DemoConfig {
            heartbeat_ms: options.heartbeat_ms,
            run_ms: options.run_ms,
            kvp: options.kvp.clone(),
            max_version: options.max_version,
        },
    )?;
    if let (Some((wim, index)), Some(disk)) = (&options.deploy, &options.disk) {
        let t0 = std::time::Instant::now();
        let d = storage::deploy::deploy(wim, *index, disk).map_err(|source| VmmError::Deploy {
            path: wim.clone(),
            source,
        })?;
        timeline.host(format_args!(
            "deploy: image {index} of {} onto {} (FAT32, {} MiB): {} files, {} directories, {} KiB, {} links left out, in {:.0} ms",
            wim.display(),
            disk.display(),
            d.disk_size >> 20,
            d.files,
            d.dirs,
            d.bytes >> 10,
            d.skipped,
            t0.elapsed().as_secs_f64() * 1e3
        ));
    }
    if let Some(path) = &options.disk {
        let vhd = vhd_format::Vhd::open_path(
            path,
            vhd_format::OpenOptions::new().writable(true),
            &vhd_format::ParentPolicy::default(),
        )
        .map_err(|source| VmmError::Disk {
            path: path.clone(),
            source,
        })?;
        let serial = path
            .file_name()
            .map_or_else(|| "disk".into(), |n| n.to_string_lossy().into_owned());
        let disk = storage::scsi::ScsiDisk::new(vhd, &serial);
        let blocks = disk.blocks();
        hyperv
            .vmbus
            .attach_disk(disk, path.clone(), options.snapshot.clone());
        timeline.host(format_args!(
            "disk: {} ({} MiB) on the synthetic SCSI controller, LUN 0",
            path.display(),
            (blocks * 512) >> 20
        ));
    }
    let mut net_role = 0;
    if let Some((hub, mac, vlan, role)) = &identity.net {
        let port = hub
            .add_port(*mac, *vlan)
            .ok_or_else(|| VmmError::Tick(std::io::Error::other("the switch refused a port")))?;
        hyperv
            .vmbus
            .attach_nic(net::netvsp::NetChannel::new(*mac, hub.clone(), port));
        net_role = *role;
        timeline.host(format_args!(
            "network: adapter {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} on switch port {}, access VLAN {vlan}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], port.0
        ));
    }
    if options.disk.is_some() {
        // Host commands (`snapshot [CHILD.avhd]`) from standard input, one per line.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        hyperv.vmbus.commands = Some(rx);
    }
    let leaves = hyperv.cpuid_leaves();
    let mut vm = Vm::create(
        memory,
        VmOptions {
            irqchip: options.irqchip,
            hypervisor_leaves: leaves.as_slice(),
            user_space_msrs: hyperv::SYNTHETIC_MSRS,
        },
    )?;
    vm.set_boot_cpu(&BootCpu::long_mode(
        image.entry(),
        layout::stack_pointer(mem_size),
    ))?;
    // The built-in guest's arguments (System V: rdi, rsi): the scenario and the probe count.
    let mut regs = vm.general_registers()?;
    (regs.rdi, regs.rsi, regs.rdx) = (options.scenario, options.probe, net_role);
    vm.set_general_registers(&regs)?;
    timeline.host(format_args!(
        "vm created: {} MiB ram, guest entry {:#x}, Hyper-V cpuid leaves 0x40000000-{:#x}, no KVM signature",
        options.mem_mib,
        image.entry(),
        leaves.as_slice().iter().map(|l| l.function).max().unwrap_or(0x4000_0000),
    ));
    if options.trace {
        eprintln!(
            "[vmm] {} MiB ram, entry {:#x}, in-kernel irqchip {}",
            options.mem_mib,
            image.entry(),
            if vm.irqchip() { "on" } else { "off" }
        );
        for segment in image.segments() {
            eprintln!(
                "[vmm] segment {}: {:#x?} ({:#x} bytes from the file)",
                segment.index,
                segment.range(),
                segment.file_size
            );
        }
    }

    let mut bus = PortBus::new();
    bus.register(
        COM1_BASE,
        PORT_COUNT,
        Box::new(Serial::new(GuestConsole::new(timeline))),
    )?;
    bus.register(POWER_OFF_PORT, 1, Box::new(PowerOff))?;

    let _tick = if identity.own_tick {
        Some(tick::Tick::start(std::time::Duration::from_millis(5)).map_err(VmmError::Tick)?)
    } else {
        None
    };
    let (status, stats) = exit::run(&mut vm, &mut bus, &mut hyperv, options.trace)?;
    if !bus.mmio.log.is_empty() {
        let accesses: Vec<String> = bus
            .mmio
            .log
            .iter()
            .map(|(write, offset, len)| {
                format!(
                    "{} {len} at {offset:#x}",
                    if *write { "write" } else { "read" }
                )
            })
            .collect();
        timeline.host(format_args!(
            "mmio: the test device saw {} accesses: {}",
            accesses.len(),
            accesses.join(", ")
        ));
    }
    hyperv.vmbus.finish_snapshot(&timeline);
    if let Some(storage) = hyperv.vmbus.storage_mut() {
        if let Err(e) = storage.disk.flush() {
            timeline.host(format_args!("disk: flush failed: {e}"));
        }
        let (d, s) = (storage.disk.stats, storage.stats);
        timeline.host(format_args!(
            "disk: {} reads ({} KiB), {} writes ({} KiB), {} errors; {} requests in {} drains",
            d.reads,
            d.bytes_read >> 10,
            d.writes,
            d.bytes_written >> 10,
            d.errors,
            s.requests,
            s.drains
        ));
        if let Some((first, last)) = s.exits.filter(|_| s.requests > 0) {
            timeline.host(format_args!(
                "measured: storage: {:.1} exits per request ({} exits from the first request to the last, {} requests)",
                (last - first) as f64 / s.requests as f64,
                last - first,
                s.requests
            ));
        }
        if let Some(path) = &options.disk {
            match storage::host_baseline(path, 2048) {
                Ok((r, w)) => timeline.host(format_args!(
                    "measured: host baseline on the same file, 4 KiB random, queue depth 1: pread {r:.0} IOPS, pwrite {w:.0} IOPS"
                )),
                Err(e) => timeline.host(format_args!("measured: host baseline failed: {e}")),
            }
        }
    }
    if let Some(n) = hyperv.vmbus.net() {
        let (rx, tx, dropped) = n.switch_counters();
        let s = n.stats;
        timeline.host(format_args!(
            "network: {} frames from the guest, {} to it, {} control messages; switch port {}: {rx} received, {tx} transmitted, {dropped} dropped",
            s.frames_out, s.frames_in, s.control, n.port().0
        ));
        if let Some((first, last)) = s.exits.filter(|_| s.frames_out + s.frames_in > 0) {
            timeline.host(format_args!(
                "measured: network: {:.1} exits per frame ({} frames)",
                (last - first) as f64 / (s.frames_out + s.frames_in) as f64,
                s.frames_out + s.frames_in
            ));
        }
    }
    summary(&timeline, &hyperv, &stats);
    if options.trace {
        let c = hyperv.counters();
        eprintln!(
            "[vmm] hyper-v: {} synthetic msr reads, {} writes, {} hypercalls ({} diagnostic signals)",
            c.msr_reads, c.msr_writes, c.hypercalls, c.diagnostic_signals
        );
    }
    Ok(status)
}

/// The measurements, printed after the guest powered off.
fn summary(timeline: &Timeline, hyperv: &HyperV, stats: &exit::ExitStats) {
    let v = &hyperv.vmbus.stats;
    timeline.host(format_args!(
        "guest powered off after {} exits ({} instructions KVM could not emulate completed: {} by x86-decode's emulator, {} SSE register forms)",
        stats.exits,
        stats.completions,
        stats.emulated,
        stats.completions - stats.emulated
    ));
    if let Some((at, exits)) = v.all_open {
        timeline.host(format_args!(
            "measured: boot to all four channels open: {:.1} ms, {exits} exits",
            (at - timeline.start()).as_secs_f64() * 1e3
        ));
    }
    let rtt = &v.heartbeat_rtt_ns;
    if !rtt.is_empty() {
        let avg = rtt.iter().sum::<u64>() as f64 / rtt.len() as f64;
        timeline.host(format_args!(
            "measured: heartbeat round trip: min {:.2} ms, mean {:.2} ms, max {:.2} ms over {}",
            *rtt.iter().min().unwrap_or(&0) as f64 / 1e6,
            avg / 1e6,
            *rtt.iter().max().unwrap_or(&0) as f64 / 1e6,
            rtt.len()
        ));
    }
    let messages = v.packets_to_guest + v.packets_from_guest;
    if messages > 0 {
        let ic_exits = stats
            .exits_after_open
            .saturating_sub(stats.console_exits_after_open);
        timeline.host(format_args!(
            "measured: {:.1} exits per integration-service message ({ic_exits} non-console exits after the channels opened, {messages} messages)",
            ic_exits as f64 / messages as f64
        ));
    }
    if let Some(per_exit) = stats.probe_ns_per_exit() {
        let ratio = if rtt.is_empty() {
            String::new()
        } else {
            let avg = rtt.iter().sum::<u64>() as f64 / rtt.len() as f64;
            format!("; heartbeat round trip = {:.0} raw exits", avg / per_exit)
        };
        timeline.host(format_args!(
            "measured: raw exit round trip (guest loop of {} port writes): {:.1} us per exit{ratio}",
            stats.probe_exits,
            per_exit / 1e3
        ));
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vmm: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match options.net {
        Some(vlans) => run_pair(&options, vlans),
        None => run(&options),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("vmm: the guest powered off with failure status {status}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("vmm: error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            if let Some(regs) = e.registers() {
                eprintln!("registers:\n{regs}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse(&[]).unwrap(),
            Command::Run(Options {
                mem_mib: DEFAULT_MEM_MIB,
                guest: None,
                irqchip: true,
                trace: false,
                kvp: vec![
                    ("HostName".into(), "viridian-host".into()),
                    ("VirtualMachineName".into(), "viridian-demo".into()),
                ],
                heartbeat_ms: 500,
                run_ms: 2500,
                probe: 2000,
                max_version: VmbusVersion::WIN10_V5_3,
                scenario: 0,
                disk: None,
                snapshot: None,
                net: None,
                deploy: None,
            })
        );
    }

    #[test]
    fn flags_and_values() {
        let Command::Run(options) =
            parse(&["--mem", "128", "--trace", "--guest=/x", "--no-irqchip"]).unwrap()
        else {
            panic!("expected run");
        };
        assert_eq!(options.mem_mib, 128);
        assert_eq!(options.guest, Some(PathBuf::from("/x")));
        assert!(options.trace);
        assert!(!options.irqchip);
        assert_eq!(
            parse(&["--mem=16"]).unwrap(),
            parse(&["--mem", "16"]).unwrap()
        );
        assert_eq!(parse(&["--trace", "-h"]).unwrap(), Command::Help);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert_eq!(
            parse(&["--mem"]).unwrap_err(),
            UsageError::MissingValue("--mem")
        );
        assert!(matches!(
            parse(&["--mem", "2"]),
            Err(UsageError::BadMemSize { .. })
        ));
        assert!(matches!(
            parse(&["--mem", "4096"]),
            Err(UsageError::BadMemSize { .. })
        ));
        assert!(matches!(
            parse(&["--mem", "x"]),
            Err(UsageError::BadMemSize { .. })
        ));
        assert!(matches!(
            parse(&["--bogus"]),
            Err(UsageError::UnknownOption(_))
        ));
        assert!(matches!(
            parse(&["--trace=1"]),
            Err(UsageError::UnknownOption(_))
        ));
        for bad in [
            &["--kvp", "novalue"][..],
            &["--kvp", "=v"],
            &["--heartbeat-ms", "0"],
            &["--vmbus-version", "6.0"],
            &["--vmbus-version", "1.0"],
            &["--scenario", "bogus"],
        ] {
            assert!(
                matches!(parse(bad), Err(UsageError::BadValue { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn demo_options() {
        let Command::Run(options) = parse(&[
            "--kvp",
            "a=b=c",
            "--kvp=x=",
            "--heartbeat-ms",
            "100",
            "--run-ms=50",
            "--probe",
            "0",
            "--vmbus-version",
            "4.0",
            "--scenario",
            "unknown-connection",
            "--disk=/tmp/x.vhd",
        ])
        .unwrap() else {
            panic!("expected run");
        };
        assert_eq!(
            options.kvp,
            [("a".into(), "b=c".into()), ("x".into(), String::new())]
        );
        assert_eq!(
            (options.heartbeat_ms, options.run_ms, options.probe),
            (100, 50, 0)
        );
        assert_eq!(options.max_version, VmbusVersion::WIN10);
        assert_eq!(options.scenario, 2);
        assert_eq!(options.disk, Some(PathBuf::from("/tmp/x.vhd")));
    }
}
