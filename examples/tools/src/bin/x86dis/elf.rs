//! Just enough ELF64 (little-endian) to find the `.text` section: its address and bytes.

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(d: &[u8], o: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(
        d.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
    .ok()
}

/// The `.text` section's virtual address and contents, if `data` is an ELF64 LE file with one.
pub fn text_section(data: &[u8]) -> Option<(u64, &[u8])> {
    if data.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = u64_at(data, 0x28)?;
    let shentsize = usize::from(u16_at(data, 0x3A)?);
    let shnum = usize::from(u16_at(data, 0x3C)?);
    let shstrndx = usize::from(u16_at(data, 0x3E)?);
    let sh = |k: usize| shoff.checked_add(k.checked_mul(shentsize)?);
    let strtab = u64_at(data, sh(shstrndx)?.checked_add(0x18)?)?;
    for k in 0..shnum {
        let h = sh(k)?;
        let name = strtab.checked_add(usize::try_from(u32_at(data, h)?).ok()?)?;
        if data.get(name..name.checked_add(6)?)? == b".text\0" {
            let addr = u64_at(data, h + 0x10)? as u64;
            let off = u64_at(data, h + 0x18)?;
            let size = u64_at(data, h + 0x20)?;
            return Some((addr, data.get(off..off.checked_add(size)?)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn rejects_non_elf() {
        assert!(super::text_section(b"not an elf").is_none());
        assert!(super::text_section(b"\x7fELF\x02\x01").is_none());
    }
}
