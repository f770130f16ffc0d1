//! `wimtool`: a `wimlib-imagex`-like command-line tool over the `wim-image` crate.
//!
//! Exit codes: 0 success, 1 usage error (also a path or image the WIM lacks), 2 corrupt or
//! unusable WIM (or failed verification), 3 I/O error.

mod args;
mod commands;
#[path = "../vhdtool/json.rs"]
#[allow(dead_code)]
mod json;
mod progress;
mod text;
mod update;
mod write;

use std::process::ExitCode;

const USAGE: &str = "\
usage: wimtool <command> [options] <arguments>

commands:
  info     [--json] [--xml] WIM           header, images and their XML data
  dir      [--detailed] WIM [IMAGE]       list an image's files (IMAGE: index or name, default 1)
  extract  [--dest-dir DIR] WIM IMAGE PATH...
                                          extract chosen paths (into DIR, default .)
  apply    WIM [IMAGE] DIR                apply an image to a directory
  verify   WIM                            check the integrity table, metadata and every blob
  capture  DIR WIM [NAME [DESCRIPTION]]   a new WIM holding one image of DIR
  append   DIR WIM [NAME [DESCRIPTION]]   add an image of DIR to WIM in place
  export   SRC IMAGE|all DEST [NAME]      copy images into DEST (appended if it exists)
  delete   [--soft] WIM IMAGE|all         remove images (the file is rebuilt and replaced;
                                          --soft: in place, leaving a hole)
  update   WIM [IMAGE] [< COMMANDS]       add/delete/rename paths in an image, in place:
                                          add [--no-replace] SRC DEST, delete [--force]
                                          [--recursive] PATH, rename OLD NEW (one per line)
  optimize WIM                            rebuild without holes (--compress, --chunk-size
                                          to change the compression)
  split    WIM X.swm MAX_MiB              split into parts X.swm, X2.swm, X3.swm ...

options:
  --threads N        decoder threads for apply/extract, compressor threads for
                     capture/append/export/optimize (default: all cores; at most 64;
                     fewer, with a note, when they would not fit in available memory)
  --compress=TYPE[:LEVEL]
                     capture/export/optimize: none, xpress, lzx (default for capture;
                     export/optimize: the source's) or lzms; level 1-100
  --chunk-size=SIZE  capture/export: uncompressed chunk size (default 32K)
  --solid            capture/append/export/optimize: data in solid resources (ESD style,
                     version 0xE00); metadata LZMS unless --compress says otherwise
  --solid-compress=TYPE, --solid-chunk-size=SIZE
                     the solid codec (default lzms) and chunk size (default 64M for LZMS,
                     32K otherwise)
  --recompress       export/optimize: compress every blob again (default: blobs the
                     source compressed the same way are copied as stored)
  --check            capture/append/export/delete/update: write an integrity table
  --command=CMD      update: one command instead of standard input
  --rebuild          update: rebuild the file afterwards (no holes)
  --no-replace, --force, --recursive
                     update: the option for every add / delete command
  --boot             capture/append/export: mark the new image bootable
  --unix-data        apply/extract: restore owners, modes and special files;
                     capture/append/update: store them (special files kept)
  --dereference      capture/append/update: follow symbolic links
  --config=FILE      capture/append/update (every add): what to leave out ([ExclusionList],
                     [ExclusionException]; default: wimlib's default list)
  --wimboot-config=FILE
                     update: instead of commands, add FILE as
                     /Windows/System32/WimBootCompress.ini
  --rpfix/--norpfix  apply: rewrite absolute link targets under DIR (default: as the WIM
                     says); capture: store targets inside DIR relative to it (default on)
  --ref GLOB         for split WIMs: the other parts (default: NAME2.swm, NAME3.swm ...);
                     in the file name, * is any text, ? any one byte, [a-z] / [!a-z] one
                     byte of / not of a set; the first part may match too
  -q, --quiet        no progress bar

value options a command does not use are refused. Files written anew (capture, export to
a new file, split parts, rebuilds) are written beside their name and renamed there once
complete: a failure leaves what was there untouched.

exit codes: 0 ok, 1 usage error (also: a path or image not in the WIM), 2 corrupt WIM or
verification failed (naming the WIM), 3 I/O error";

fn main() -> ExitCode {
    // Raw arguments: a file name need not be UTF-8.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match argv.split_first() {
        None => {
            eprintln!("{USAGE}");
            1
        }
        Some((help, _)) if ["-h", "--help", "help"].iter().any(|h| help == *h) => {
            println!("{USAGE}");
            0
        }
        Some((command, rest)) => {
            let command = command.to_string_lossy();
            commands::run(&command, rest).map_or_else(
                |f| {
                    eprintln!("wimtool {command}: {}", f.message());
                    if f.code() == 1 {
                        eprintln!("run `wimtool --help` for usage");
                    }
                    f.code()
                },
                |()| 0,
            )
        }
    };
    ExitCode::from(code)
}
