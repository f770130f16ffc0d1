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

mod cli;
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
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cli::{parse_args, Command, Options, USAGE};
use devices::pm::{PowerOff, POWER_OFF_PORT};
use devices::serial::{Serial, COM1_BASE, PORT_COUNT};
use devices::PortBus;
use elf::ElfImage;
use hyperv::HyperV;
use kvm::{Vm, VmOptions};
use long_mode::BootCpu;
use memory::GuestMemory;
use timeline::{GuestConsole, Timeline};

/// The test guest built from `examples/guest` by `build.rs`.
static BUILTIN_GUEST: &[u8] = include_bytes!(env!("VIRIDIAN_GUEST_ELF"));

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
    #[error("cannot create the demo's disk in {path}")]
    DemoDisk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the TAP uplink {name}")]
    Tap {
        name: String,
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
    /// Attach `--disk` (with its snapshot plan) to this VM.
    disk: bool,
    /// Ask this guest to shut down only once the flag is set (see [`hyperv::vmbus::DemoConfig`]).
    hold_shutdown: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Set once the VM runs (its thread may then be kicked, see [`tick::kick_threads`]).
    running: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// Boots the guest and runs it to power-off; returns the guest's exit status.
fn run(options: &Options) -> Result<u8, VmmError> {
    run_vm(
        options,
        VmIdentity {
            timeline: Timeline::new(),
            net: None,
            own_tick: true,
            disk: true,
            hold_shutdown: None,
            running: None,
        },
    )
}

/// The whole demo: a new dynamic VHD in a temporary directory for guest a, snapshotted live
/// after its first write and merged back at shutdown; two guests on one switch.
fn run_whole_demo(options: &Options) -> Result<u8, VmmError> {
    let timeline = Timeline::new();
    let dir = storage::TempDir::new("viridian-demo").map_err(|source| VmmError::DemoDisk {
        path: std::env::temp_dir(),
        source,
    })?;
    let disk = dir.path().join("demo.vhd");
    let child = dir.path().join("demo-1.avhd");
    storage::create_disk(&disk, 32 << 20).map_err(|source| VmmError::DemoDisk {
        path: disk.clone(),
        source,
    })?;
    timeline.host(format_args!(
        "demo: guest a gets {} (a new 32 MiB dynamic VHD), snapshotted live into {} after its first write and merged back at shutdown; guests a and b share one switch",
        disk.display(),
        child.display()
    ));
    let mut options = options.clone();
    options.disk = Some(disk.clone());
    options.snapshot = Some(storage::snapshot::SnapshotPlan {
        child,
        after_writes: 1,
        merge: true,
    });
    let status = run_pair(&options, (1, 1), timeline)?;
    match storage::check_disk(&disk) {
        Ok(line) => timeline.host(format_args!("demo: after the merge, {line}")),
        Err(e) => timeline.host(format_args!("demo: cannot check {}: {e}", disk.display())),
    }
    Ok(status)
}

/// Two guests on one switch, each VM on its own thread; returns the worse exit status.
/// Guest a gets `--disk`; guest b is asked to shut down only after a has powered off, so
/// that everything a sends reaches it.
fn run_pair(options: &Options, vlans: (u16, u16), timeline: Timeline) -> Result<u8, VmmError> {
    let hub = Arc::new(net::Hub::new());
    timeline.host(format_args!(
        "network: one vswitch-core switch, guest a on access VLAN {}, guest b on access VLAN {}",
        vlans.0, vlans.1
    ));
    let tap = match &options.tap {
        Some(name) => {
            let tap =
                net::tap::TapUplink::open(name, hub.clone()).map_err(|source| VmmError::Tap {
                    name: name.clone(),
                    source,
                })?;
            timeline.host(format_args!(
                "network: TAP interface {} is up as the switch's uplink (port {}, trunk, VLAN 1 untagged)",
                tap.name(),
                tap.port().0
            ));
            Some(tap)
        }
        None => None,
    };
    let a_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = [(); 2].map(|()| Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let spawn = |name: &'static str, last: u8, vlan: u16, role: u64| {
        let identity = VmIdentity {
            timeline: timeline.named(name),
            net: Some((hub.clone(), [0x02, 0, 0, 0, 0, last], vlan, role)),
            own_tick: false,
            disk: role == 1,
            hold_shutdown: (role == 2).then(|| a_done.clone()),
            running: Some(running[role as usize - 1].clone()),
        };
        let options = options.clone();
        let done = (role == 1).then(|| a_done.clone());
        std::thread::Builder::new()
            .name(format!("vm-{name}"))
            .spawn(move || {
                let result = run_vm(&options, identity);
                if let Some(done) = done {
                    done.store(true, std::sync::atomic::Ordering::Release);
                }
                result
            })
    };
    let spawned = (spawn("a", 0x0a, vlans.0, 1), spawn("b", 0x0b, vlans.1, 2));
    let (Ok(a), Ok(b)) = spawned else {
        return Err(VmmError::Tick(std::io::Error::other(
            "cannot start the VM threads",
        )));
    };
    use std::os::unix::thread::JoinHandleExt;
    let threads = [
        (a.as_pthread_t(), &*running[0]),
        (b.as_pthread_t(), &*running[1]),
    ];
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
    if let Some(tap) = tap {
        let (name, port) = (tap.name().to_string(), tap.port());
        let s = tap.stop();
        let (rx, tx, dropped) = hub.counters(port);
        timeline.host(format_args!(
            "network: TAP {name}: {} frames from the host, {} to it ({} refused); switch port {}: {rx} received, {tx} transmitted, {dropped} dropped",
            s.from_host, s.to_host, s.write_errors, port.0
        ));
    }
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
            hold_shutdown: identity.hold_shutdown.clone(),
        },
    )?;
    let disk_path = options.disk.as_ref().filter(|_| identity.disk);
    if let (Some((wim, index)), Some(disk)) = (&options.deploy, disk_path) {
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
    if let Some(path) = disk_path {
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
    if disk_path.is_some() {
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
        "vm created: {} MiB ram, guest entry {:#x}, Hyper-V cpuid leaves 0x40000000-{:#x}, no KVM signature; emulation failures exit {}",
        options.mem_mib,
        image.entry(),
        leaves.as_slice().iter().map(|l| l.function).max().unwrap_or(0x4000_0000),
        if vm.failure_bytes() {
            "with the instruction bytes"
        } else {
            "without instruction bytes (KVM_CAP_EXIT_ON_EMULATION_FAILURE unavailable)"
        }
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
    if let Some(running) = &identity.running {
        running.store(true, std::sync::atomic::Ordering::Release);
    }
    let ran = exit::run(&mut vm, &mut bus, &mut hyperv, options.trace);
    if let Some(running) = &identity.running {
        running.store(false, std::sync::atomic::Ordering::Release);
    }
    let (status, stats) = ran?;
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
            "mmio: the test device saw {} accesses: {}{}",
            bus.mmio.accesses,
            accesses.join(", "),
            if bus.mmio.accesses > accesses.len() as u64 {
                ", ..."
            } else {
                ""
            }
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
        if let Some(path) = disk_path {
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
        "guest powered off after {} exits ({} instructions KVM could not emulate completed: {} by x86-decode's emulator ({} from the bytes in KVM's exit), {} SSE register forms)",
        stats.exits,
        stats.completions,
        stats.emulated,
        stats.emulated_from_exit_bytes,
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
    // With a disk or an adapter their traffic shares the exits: no per-message figure then.
    if messages > 0 && !hyperv.vmbus.has_devices() {
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
        _ if options.whole_demo() => run_whole_demo(&options),
        Some(vlans) => run_pair(&options, vlans, Timeline::new()),
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
