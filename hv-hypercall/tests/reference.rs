//! Cross-checks the crate's tables against the project's reference notes
//! (`shared/reference/vmbus-hypercall.md` §5), parsed independently of the crate: every status
//! code, call code, synthetic MSR number and hypervisor message type the notes list must exist
//! with the listed value (and, where the notes give a single name, that name).
//!
//! The notes live beside the repository (`../shared`, or `$VIRIDIAN_SHARED`), not in it, so a
//! checkout elsewhere (a CI runner, a fresh clone) may not have them: the test then prints
//! `skipped:` and passes. The same values are pinned by the crate's unit tests either way.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hv_hypercall::defs::{HvMessageType, HvMsr, HvStatus, HypercallCode};

fn notes() -> Option<String> {
    let shared = std::env::var_os("VIRIDIAN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = shared.join("reference/vmbus-hypercall.md");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            println!(
                "skipped: reference notes not found at {} ({e})",
                path.display()
            );
            None
        }
    }
}

/// The text of the section whose heading starts with `heading`, up to the next heading.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = &text[start + heading.len()..];
    let end = body
        .find("\n### ")
        .or_else(|| body.find("\n## "))
        .unwrap_or(body.len());
    &body[..end]
}

/// Every `0x…` hex literal followed by white space and an upper-case name, e.g. `0x13 INSUFFICIENT_BUFFERS`.
fn hex_name_pairs(text: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("0x") {
        let start = i + pos + 2;
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
            end += 1;
        }
        i = end;
        if end == start || !bytes.get(end).is_some_and(u8::is_ascii_whitespace) {
            continue;
        }
        let value = u64::from_str_radix(&text[start..end], 16).unwrap();
        let name: String = text[end..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if name.len() > 1 {
            out.push((value, name));
        }
    }
    out
}

fn hex_values(cell: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in cell.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Some(hex) = part.strip_prefix("0x") {
            if let Ok(v) = u64::from_str_radix(hex, 16) {
                out.push(v);
            }
        }
    }
    out
}

/// The cells of the markdown table rows in `text`.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| ---"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace("**", ""))
                .collect()
        })
        .collect()
}

/// `SwitchVirtualAddressSpace` → `SWITCH_VIRTUAL_ADDRESS_SPACE`.
fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[test]
fn status_codes() {
    let Some(text) = notes() else { return };
    let pairs = hex_name_pairs(section(&text, "### 5.3 Status codes"));
    assert!(pairs.len() >= 58, "parsed only {} codes", pairs.len());
    for (value, name) in &pairs {
        assert_eq!(
            HvStatus(*value as u16).name(),
            Some(name.as_str()),
            "{value:#x}"
        );
    }
    assert_eq!(
        pairs.len(),
        HvStatus::ALL.len(),
        "the crate names codes the notes do not list"
    );
}

#[test]
fn call_codes() {
    let Some(text) = notes() else { return };
    let mut listed = BTreeSet::new();
    for row in rows(section(&text, "### 5.4 Call codes")) {
        let codes = hex_values(&row[0]);
        if codes.is_empty() {
            continue;
        }
        let names: Vec<&str> = row[1].split('/').map(str::trim).collect();
        for &code in &codes {
            let known = HypercallCode(code as u16);
            assert!(
                known.name().is_some(),
                "call code {code:#x} ({}) has no name",
                row[1]
            );
            listed.insert(code as u16);
        }
        if codes.len() == 1 && names.len() == 1 {
            assert_eq!(
                HypercallCode(codes[0] as u16).name(),
                Some(screaming(names[0]).as_str()),
                "{:#x}",
                codes[0]
            );
        }
    }
    let crate_codes: BTreeSet<u16> = HypercallCode::ALL.iter().map(|c| c.0).collect();
    assert_eq!(listed, crate_codes);
}

#[test]
fn synthetic_msrs() {
    let Some(text) = notes() else { return };
    let mut listed = BTreeSet::new();
    for row in rows(section(&text, "### 5.6 MSRs (x64)")) {
        let cell = &row[0];
        if !cell.starts_with("0x") {
            continue;
        }
        let mut numbers = Vec::new();
        if cell.contains("+2n") {
            // `0x400000B0+2n / B1+2n` with n = 0..3.
            let base = hex_values(cell)[0];
            for n in 0..4 {
                numbers.push(base + 2 * n);
                numbers.push(base + 1 + 2 * n);
            }
        } else if let Some((first, last)) = cell.split_once('–') {
            // `0x40000090–9F`: the last digits replace the tail of the first number.
            let first = first.trim().trim_start_matches("0x");
            let last = last.trim();
            let end = format!("{}{}", &first[..first.len() - last.len()], last);
            let (a, b) = (
                u64::from_str_radix(first, 16).unwrap(),
                u64::from_str_radix(&end, 16).unwrap(),
            );
            numbers.extend(a..=b);
        } else {
            numbers.extend(hex_values(cell));
        }
        for &n in &numbers {
            assert!(
                HvMsr(n as u32).name().is_some(),
                "msr {n:#x} ({}) has no name",
                row[1]
            );
            listed.insert(n as u32);
        }
        if numbers.len() == 1 && !row[1].contains('/') {
            assert_eq!(HvMsr(numbers[0] as u32).name(), Some(row[1].as_str()));
        }
    }
    assert!(listed.len() >= 50, "parsed only {} msrs", listed.len());
    let crate_msrs: BTreeSet<u32> = HvMsr::ALL.iter().map(|m| m.0).collect();
    assert_eq!(listed, crate_msrs);
}

#[test]
fn message_types() {
    let Some(text) = notes() else { return };
    let body = section(&text, "### 5.8 SynIC pages and messages");
    let body = &body[body.find("Message types:").expect("message type list")..];
    let pairs = hex_name_pairs(body);
    assert!(pairs.len() >= 15);
    for (value, name) in &pairs {
        let ours = HvMessageType(*value as u32)
            .name()
            .unwrap_or_else(|| panic!("{value:#x}"));
        assert!(
            ours == name || ours == format!("X64_{name}"),
            "{value:#x}: {ours} vs {name}"
        );
    }
    // `0x80000060/61/62` are listed as a group.
    for v in [0x8000_0060, 0x8000_0061, 0x8000_0062] {
        assert!(HvMessageType(v).name().is_some());
    }
    assert_eq!(HvMessageType::VMBUS.0, 1, "VMBus uses 1");
}
