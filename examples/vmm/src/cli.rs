//! The command line: options, their parsing and the usage text.

use std::ffi::OsString;
use std::path::PathBuf;

use vmbus_ring::channel::VmbusVersion;

use crate::{layout, storage};

/// Guest RAM size when `--mem` is not given, in MiB.
pub const DEFAULT_MEM_MIB: u64 = 64;

pub const USAGE: &str = "\
usage: vmm [options]

Boots a 64-bit ELF guest under KVM in long mode and runs it until it powers off.
The guest's serial output (COM1) goes to stdout, on one timeline with the host's lines.

Without --single, --disk, --net, --vlans, --deploy, --guest or --scenario, the run is the
whole demo: two built-in guests on one vswitch-core switch (guest a pings guest b), guest a
with a new 32 MiB dynamic VHD (in a temporary directory, removed afterwards) that the host
snapshots live after the guest's first write and merges back at shutdown, and both guests
touching the MMIO test device with instructions only x86-decode's emulator completes.

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
  --tap <name>           with two guests: create TAP interface <name> as the switch's
                         external uplink (a trunk, VLAN 1 untagged), set it up, and move
                         frames between it and the switch (needs CAP_NET_ADMIN)
  --single               one guest, no disk, no network: the integration services only
  --guest <path>         boot this ELF64 executable instead of the built-in test guest
  --no-irqchip           do not create KVM's in-kernel interrupt controller; a guest `hlt`
                         then stops the VM with an error instead of sleeping
  --trace                log every vCPU exit to stderr
  -h, --help             show this help

exit status: 0 guest powered off with status 0, 1 VMM error, 2 usage error,
             3 guest powered off with a non-zero status";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mem_mib: u64,
    pub guest: Option<PathBuf>,
    pub irqchip: bool,
    pub trace: bool,
    pub kvp: Vec<(String, String)>,
    pub heartbeat_ms: u64,
    pub run_ms: u64,
    pub probe: u64,
    pub max_version: VmbusVersion,
    pub scenario: u64,
    pub disk: Option<PathBuf>,
    pub snapshot: Option<storage::snapshot::SnapshotPlan>,
    /// Run two guests on one switch (`--net`), their ports on these access VLANs.
    pub net: Option<(u16, u16)>,
    /// Deploy this WIM image onto a new `--disk` first.
    pub deploy: Option<(PathBuf, u32)>,
    /// `--single`: one bare guest even when nothing else is asked for.
    pub single: bool,
    /// `--tap NAME`: the switch's uplink to a TAP interface.
    pub tap: Option<String>,
}

impl Default for Options {
    /// The defaults of every option (no KVP keys: the command line supplies its own).
    fn default() -> Self {
        Self {
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
            single: false,
            tap: None,
        }
    }
}

impl Options {
    /// Whether this run is the whole demo (nothing narrower was asked for).
    pub fn whole_demo(&self) -> bool {
        !self.single
            && self.disk.is_none()
            && self.net.is_none()
            && self.deploy.is_none()
            && self.guest.is_none()
            && self.scenario == 0
    }
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
// Parsed once at start-up: the size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Run(Options),
    Help,
}

/// A bad command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
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
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut options = Options::default();
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
            "--single" if inline.is_none() => options.single = true,
            "--tap" => {
                let value = value("--tap")?;
                let name = value
                    .to_str()
                    .filter(|n| !n.is_empty() && n.len() < 16 && !n.contains(['/', ' ']))
                    .ok_or(UsageError::BadValue {
                        option: "--tap",
                        value: value.clone(),
                    })?;
                options.tap = Some(name.to_string());
            }
            "--no-irqchip" if inline.is_none() => options.irqchip = false,
            "--trace" if inline.is_none() => options.trace = true,
            _ => return Err(UsageError::UnknownOption(name)),
        }
    }
    if options.tap.is_some() && options.net.is_none() && !options.whole_demo() {
        return Err(UsageError::BadValue {
            option: "--tap",
            value: OsString::from("needs two guests (--net, or the whole demo)"),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults() {
        let d = Options::default();
        assert_eq!(
            (d.mem_mib, d.heartbeat_ms, d.run_ms, d.probe, d.max_version),
            (64, 500, 2500, 2000, VmbusVersion::WIN10_V5_3)
        );
        assert!(d.irqchip && !d.trace && !d.single && d.whole_demo());
        assert_eq!(
            parse(&[]).unwrap(),
            Command::Run(Options {
                kvp: vec![
                    ("HostName".into(), "viridian-host".into()),
                    ("VirtualMachineName".into(), "viridian-demo".into()),
                ],
                ..Options::default()
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

    #[test]
    fn whole_demo_single_and_tap() {
        let run = |args: &[&str]| match parse(args).unwrap() {
            Command::Run(options) => options,
            Command::Help => panic!("expected run"),
        };
        assert!(run(&[]).whole_demo());
        assert!(run(&["--run-ms", "100", "--probe", "0"]).whole_demo());
        for narrower in [
            &["--single"][..],
            &["--disk", "x.vhd"],
            &["--net"],
            &["--vlans", "1,2"],
            &["--guest", "g.elf"],
            &["--scenario", "malformed-message"],
        ] {
            assert!(!run(narrower).whole_demo(), "{narrower:?}");
        }
        assert_eq!(run(&["--tap", "vt0"]).tap.as_deref(), Some("vt0"));
        assert_eq!(run(&["--net", "--tap=vt0"]).tap.as_deref(), Some("vt0"));
        for bad in [
            &["--single", "--tap", "vt0"][..],
            &["--disk", "x.vhd", "--tap", "vt0"],
            &["--tap", ""],
            &["--tap", "a/b"],
            &["--tap", "sixteen-chars-xx"],
        ] {
            assert!(
                matches!(parse(bad), Err(UsageError::BadValue { .. })),
                "{bad:?}"
            );
        }
    }
}
