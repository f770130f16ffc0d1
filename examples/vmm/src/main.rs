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

mod devices;
mod elf;
mod exit;
mod guest_memory;
mod hyperv;
mod kvm;
mod layout;
mod long_mode;
mod memory;
mod regs;

use std::error::Error;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use devices::pm::{PowerOff, POWER_OFF_PORT};
use devices::serial::{Serial, COM1_BASE, PORT_COUNT};
use devices::PortBus;
use elf::ElfImage;
use hyperv::HyperV;
use kvm::{Vm, VmOptions};
use long_mode::BootCpu;
use memory::GuestMemory;

/// The test guest built from `examples/guest` by `build.rs`.
static BUILTIN_GUEST: &[u8] = include_bytes!(env!("VIRIDIAN_GUEST_ELF"));

/// Guest RAM size when `--mem` is not given, in MiB.
const DEFAULT_MEM_MIB: u64 = 64;

const USAGE: &str = "\
usage: vmm [options]

Boots a 64-bit ELF guest under KVM in long mode and runs it until it powers off.
The guest's serial output (COM1) goes to stdout.

options:
  --mem <MiB>     guest RAM size in MiB (default 64, 4 to 3072)
  --guest <path>  boot this ELF64 executable instead of the built-in test guest
  --no-irqchip    do not create KVM's in-kernel interrupt controller; a guest `hlt`
                  then stops the VM with an error instead of sleeping
  --trace         log every vCPU exit to stderr
  -h, --help      show this help

exit status: 0 guest powered off with status 0, 1 VMM error, 2 usage error,
             3 guest powered off with a non-zero status";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    mem_mib: u64,
    guest: Option<PathBuf>,
    irqchip: bool,
    trace: bool,
}

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
}

/// Parses the arguments after the program name.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut options = Options {
        mem_mib: DEFAULT_MEM_MIB,
        guest: None,
        irqchip: true,
        trace: false,
    };
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
            "--no-irqchip" if inline.is_none() => options.irqchip = false,
            "--trace" if inline.is_none() => options.trace = true,
            _ => return Err(UsageError::UnknownOption(name)),
        }
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

/// Boots the guest and runs it to power-off; returns the guest's exit status.
fn run(options: &Options) -> Result<u8, VmmError> {
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

    let mut hyperv = HyperV::new(options.trace)?;
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
        Box::new(Serial::new(std::io::stdout())),
    )?;
    bus.register(POWER_OFF_PORT, 1, Box::new(PowerOff))?;

    let status = exit::run(&mut vm, &mut bus, &mut hyperv, options.trace)?;
    if options.trace {
        let c = hyperv.counters();
        eprintln!(
            "[vmm] hyper-v: {} synthetic msr reads, {} writes, {} hypercalls ({} diagnostic signals)",
            c.msr_reads, c.msr_writes, c.hypercalls, c.diagnostic_signals
        );
    }
    Ok(status)
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
    match run(&options) {
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
    }
}
