//! `vhdtool`: a `qemu-img`-like command-line tool over the `vhd-format` crate.
//!
//! Exit codes: 0 success, 1 usage error, 2 corrupt or unusable image, 3 I/O error.

mod args;
mod commands;
mod json;
mod progress;

use std::process::ExitCode;

const USAGE: &str = "\
usage: vhdtool <command> [options] <arguments>

commands:
  create   [-t fixed|dynamic|diff] -s SIZE [--block-size SIZE] [-b PARENT] FILE
  info     [--json] FILE
  check    FILE
  repair   FILE
  map      [--json] FILE
  convert  [-O raw|fixed|dynamic] [--block-size SIZE] SOURCE DEST
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
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(1);
    };
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match commands::run(command, rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("vhdtool {command}: {}", failure.message);
            if failure.code == 1 {
                eprintln!("run `vhdtool --help` for usage");
            }
            ExitCode::from(failure.code)
        }
    }
}
