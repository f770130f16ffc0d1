//! `x86dis`: disassemble a file, a hex string or an ELF `.text` section with `x86-decode`.
//!
//! ```text
//! x86dis [-m 16|32|64] [--amd] [--ip ADDR] --hex "48 8b 05 10 00 00 00"
//! x86dis [-m 16|32|64] [--amd] [--ip ADDR] [--offset N] [--length N] FILE     raw bytes
//! x86dis [-m 16|32|64] [--amd] --elf FILE                                       the .text section
//! ```
//!
//! Each line is `address: bytes  instruction`; bytes that do not decode are shown as
//! `(bad: reason)` and skipped one at a time. Exit codes: 0 success, 1 usage error, 3 I/O error.

mod elf;

use std::process::ExitCode;
use x86_decode::{DecodeError, Decoder, Mode, Vendor};

const USAGE: &str = "\
usage: x86dis [-m 16|32|64] [--amd] [--ip ADDR] (--hex HEX | --elf FILE | FILE)
  -m, --mode BITS   decode in 16-, 32- or 64-bit mode (default 64)
  --amd             apply AMD decoding rules (default Intel)
  --ip ADDR         address of the first byte (hex with 0x, or decimal; default 0, or the
                    section address with --elf)
  --offset N        with FILE: start N bytes into the file
  --length N        with FILE: decode at most N bytes
  --hex HEX         decode these bytes (whitespace between bytes optional)
  --elf FILE        decode the .text section of an ELF64 file";

enum Input {
    Hex(String),
    Elf(String),
    Raw(String),
}

struct Args {
    mode: Mode,
    vendor: Vendor,
    ip: Option<u64>,
    offset: usize,
    length: Option<usize>,
    input: Input,
}

fn parse_num(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s}"))
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        mode: Mode::Bits64,
        vendor: Vendor::Intel,
        ip: None,
        offset: 0,
        length: None,
        input: Input::Hex(String::new()),
    };
    let mut input = None;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-m" | "--mode" => {
                a.mode = match value("--mode")?.as_str() {
                    "16" => Mode::Bits16,
                    "32" => Mode::Bits32,
                    "64" => Mode::Bits64,
                    m => return Err(format!("unknown mode {m}")),
                }
            }
            "--amd" => a.vendor = Vendor::Amd,
            "--ip" => a.ip = Some(parse_num(&value("--ip")?)?),
            "--offset" => {
                a.offset =
                    usize::try_from(parse_num(&value("--offset")?)?).map_err(|e| e.to_string())?
            }
            "--length" => {
                a.length = Some(
                    usize::try_from(parse_num(&value("--length")?)?).map_err(|e| e.to_string())?,
                )
            }
            "--hex" => input = Some(Input::Hex(value("--hex")?)),
            "--elf" => input = Some(Input::Elf(value("--elf")?)),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => input = Some(Input::Raw(arg)),
        }
    }
    a.input = input.ok_or("no input given")?;
    Ok(a)
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    // ASCII hex digits only (no signs, no other characters), so the pairs below are bytes.
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{c:?} is not a hex digit"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..digits.len())
        .step_by(2)
        .map(|k| {
            u8::from_str_radix(&digits[k..k + 2], 16)
                .map_err(|_| format!("bad hex near {}", &digits[k..k + 2]))
        })
        .collect()
}

/// The most a file input may hold when no `--length` bounds it (an ELF file is read whole):
/// a device such as `/dev/zero` or a pipe would otherwise be read until memory ran out.
const MAX_INPUT: u64 = 1 << 30;

/// Reads `length` bytes of `path` from `offset` (to the end without a length), refusing more
/// than `cap` bytes; the offset is skipped by seeking where the file allows it.
fn read_input(path: &str, offset: u64, length: Option<u64>, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    if f.seek(SeekFrom::Start(offset)).is_err() {
        std::io::copy(&mut (&mut f).take(offset), &mut std::io::sink())?;
    }
    let want = length.unwrap_or(cap.saturating_add(1));
    let mut data = Vec::new();
    f.take(want).read_to_end(&mut data)?;
    if length.is_none() && data.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "more than {cap} bytes; give --length"
        )));
    }
    Ok(data)
}

/// Decodes `code` linearly from `ip` and prints one line per instruction.
fn disassemble(
    d: &Decoder,
    code: &[u8],
    ip: u64,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut off = 0;
    while off < code.len() {
        let at = ip.wrapping_add(off as u64);
        let (len, text) = match d.decode(&code[off..], at) {
            Ok(i) => (i.len(), i.display().to_string()),
            Err(DecodeError::NeedMoreBytes { .. }) => (code.len() - off, "(truncated)".to_string()),
            Err(e) => (1, format!("(bad: {e})")),
        };
        let bytes: Vec<String> = code[off..off + len]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        writeln!(out, "{at:>16x}: {:<45} {text}", bytes.join(" "))?;
        off += len;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("x86dis: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    let (code, base) = match &args.input {
        Input::Hex(h) => match parse_hex(h) {
            Ok(b) => (b, 0),
            Err(e) => {
                eprintln!("x86dis: {e}");
                return ExitCode::from(1);
            }
        },
        Input::Raw(path) | Input::Elf(path) => {
            let elf = matches!(args.input, Input::Elf(_));
            let (offset, length) = if elf {
                (0, None)
            } else {
                (args.offset as u64, args.length.map(|n| n as u64))
            };
            let data = match read_input(path, offset, length, MAX_INPUT) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("x86dis: {path}: {e}");
                    return ExitCode::from(3);
                }
            };
            if elf {
                match elf::text_section(&data) {
                    Some((addr, text)) => (text.to_vec(), addr),
                    None => {
                        eprintln!("x86dis: {path}: not an ELF64 file with a .text section");
                        return ExitCode::from(1);
                    }
                }
            } else {
                (data, 0)
            }
        }
    };
    let d = Decoder::new(args.mode).with_vendor(args.vendor);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match disassemble(&d, &code, args.ip.unwrap_or(base), &mut out)
        .and_then(|()| std::io::Write::flush(&mut out))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("x86dis: {e}");
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_disassembly() {
        assert_eq!(parse_hex("48 8b 05, 10"), Ok(vec![0x48, 0x8B, 0x05, 0x10]));
        assert!(parse_hex("4").is_err());
        // Not hex: an error, not a panic on a character boundary, and no signs.
        assert!(parse_hex("a\u{e9}b").is_err());
        assert!(parse_hex("+f+f").is_err());
        let mut out = Vec::new();
        let d = Decoder::new(Mode::Bits64);
        disassemble(&d, &[0xF3, 0xA4, 0xD6, 0xC3], 0x1000, &mut out).expect("write to a Vec");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        // String instructions show their implicit operands, as GNU objdump's Intel syntax does.
        assert!(
            lines[0].ends_with("rep movsb byte ptr es:[rdi], byte ptr ds:[rsi]"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("(bad: "), "{}", lines[1]);
        assert!(lines[2].ends_with("ret"), "{}", lines[2]);
    }

    #[test]
    fn file_input_is_bounded() {
        // A device with no end: --length bounds the read, and without it the cap does.
        let zero = read_input("/dev/zero", 1 << 40, Some(16), MAX_INPUT).expect("read");
        assert_eq!(zero, [0; 16]);
        let e = read_input("/dev/zero", 0, None, 4096).expect_err("capped");
        assert!(e.to_string().contains("more than 4096 bytes"), "{e}");
        // A regular file: offset and length as before.
        let path = std::env::temp_dir().join(format!("x86dis-{}", std::process::id()));
        std::fs::write(&path, [1, 2, 3, 4, 5]).expect("write");
        let p = path.to_str().expect("utf-8 path");
        assert_eq!(read_input(p, 1, Some(2), MAX_INPUT).expect("read"), [2, 3]);
        assert_eq!(read_input(p, 3, None, MAX_INPUT).expect("read"), [4, 5]);
        assert_eq!(read_input(p, 9, None, MAX_INPUT).expect("read"), []);
        std::fs::remove_file(&path).expect("remove");
    }
}
