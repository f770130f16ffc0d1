//! `vhdtool`: a `qemu-img`-like command-line tool over the `vhd-format` crate.
//!
//! Exit codes: 0 success, 1 usage error, 2 corrupt or unusable image, 3 I/O error.

mod args;
mod commands;
mod json;
mod output;
mod progress;

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "\
usage: vhdtool <command> [options] <arguments>

commands:
  create   [-t fixed|dynamic|diff] -s SIZE [--block-size SIZE] [-b PARENT] FILE
  info     [--json] FILE
  check    FILE
  repair   FILE
  map      [--json] FILE
  convert  [-f raw|vhd] [-O raw|fixed|dynamic] [--block-size SIZE] SOURCE DEST
                                 (-f: the source's format; default: a VHD if it has a
                                 footer, else raw)
  compact  FILE
  expand   -s SIZE FILE
  merge    CHILD                 merge CHILD into its parent
  merge    -o NEW [-O fixed|dynamic] CHILD
                                 flatten CHILD and its parents into NEW
  snapshot PARENT CHILD          create CHILD, a differencing disk over PARENT
  read     FILE OFFSET LENGTH    write the bytes to standard output
  write    FILE OFFSET [-i INPUT | --pattern BYTE --length N]
                                 write standard input (or INPUT, or a pattern) at OFFSET

common options:
  --size-policy current|chs|qemu   which size to use (default current: current_size)
  --parent-dir DIR                 also allow parents under DIR (repeatable: last wins)
  --parent-anywhere                follow locators anywhere, absolute ones included
  -q, --quiet                      no progress bar

exit codes: 0 ok, 1 usage error, 2 corrupt or unusable image, 3 I/O error";

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(1);
    };
    let name = command.to_string_lossy();
    if matches!(&*name, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    // A command name that is not UTF-8 is no command: `run` reports it as unknown.
    match commands::run(&name, rest) {
        Ok(()) => ExitCode::SUCCESS,
        // Standard output was closed (`| head`): nothing more was wanted.
        Err(failure) if failure.code == 0 => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("vhdtool {name}: {}", failure.message);
            if failure.code == 1 {
                eprintln!("run `vhdtool --help` for usage");
            }
            ExitCode::from(failure.code)
        }
    }
}
