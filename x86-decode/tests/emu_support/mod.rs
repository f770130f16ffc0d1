//! Test doubles for the emulator: a sparse guest-physical memory with device pages, a
//! register-file CPU, and page-table builders for every paging mode.
#![allow(dead_code, clippy::nonminimal_bool)]

use std::collections::{BTreeMap, BTreeSet};
use x86_decode::emulate::{
    bits, CpuState, Memory, MemoryError, Region, SegmentAttributes, SegmentRegister,
};
use x86_decode::Segment;

/// Sparse guest-physical memory: 4 KiB pages created on first write, zero elsewhere. Pages in
/// `devices` answer `Region::Device` and log every access.
#[derive(Default, Clone)]
pub struct SparseMemory {
    pub pages: BTreeMap<u64, Box<[u8; 4096]>>,
    pub devices: BTreeSet<u64>,
    /// (gpa, bytes, is_write) of every device access.
    pub device_log: Vec<(u64, Vec<u8>, bool)>,
    /// Number of compare-exchange calls, and how many of the next ones to fail.
    pub cmpxchg_calls: usize,
    pub fail_next_cmpxchg: usize,
    /// Pages that are not mapped at all (reads and writes fail).
    pub unmapped: BTreeSet<u64>,
}

impl SparseMemory {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn read_bytes(&self, gpa: u64, buf: &mut [u8]) {
        for (k, b) in buf.iter_mut().enumerate() {
            let a = gpa + k as u64;
            *b = self
                .pages
                .get(&(a >> 12))
                .map_or(0, |p| p[(a & 0xFFF) as usize]);
        }
    }

    pub fn write_bytes(&mut self, gpa: u64, data: &[u8]) {
        for (k, &b) in data.iter().enumerate() {
            let a = gpa + k as u64;
            self.pages
                .entry(a >> 12)
                .or_insert_with(|| Box::new([0; 4096]))[(a & 0xFFF) as usize] = b;
        }
    }

    pub fn read_u64(&self, gpa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read_bytes(gpa, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn write_u64(&mut self, gpa: u64, v: u64) {
        self.write_bytes(gpa, &v.to_le_bytes());
    }

    pub fn write_u32(&mut self, gpa: u64, v: u32) {
        self.write_bytes(gpa, &v.to_le_bytes());
    }
}

impl Memory for SparseMemory {
    fn region(&mut self, gpa: u64) -> Region {
        if self.devices.contains(&(gpa >> 12)) {
            Region::Device
        } else {
            Region::Ram
        }
    }

    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if self.unmapped.contains(&(gpa >> 12)) {
            return Err(MemoryError::Unmapped(gpa));
        }
        self.read_bytes(gpa, buf);
        if self.devices.contains(&(gpa >> 12)) {
            self.device_log.push((gpa, buf.to_vec(), false));
        }
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        if self.unmapped.contains(&(gpa >> 12)) {
            return Err(MemoryError::Unmapped(gpa));
        }
        if self.devices.contains(&(gpa >> 12)) {
            self.device_log.push((gpa, data.to_vec(), true));
        }
        self.write_bytes(gpa, data);
        Ok(())
    }

    fn compare_exchange(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        assert!(
            matches!(current.len(), 1 | 2 | 4 | 8 | 16),
            "size {}",
            current.len()
        );
        assert_eq!(gpa % current.len() as u64, 0, "misaligned compare-exchange");
        assert_eq!(current.len(), new.len());
        assert!(
            !self.devices.contains(&(gpa >> 12)),
            "compare-exchange on a device"
        );
        self.cmpxchg_calls += 1;
        if self.fail_next_cmpxchg > 0 {
            self.fail_next_cmpxchg -= 1;
            return Ok(false);
        }
        let mut cur = vec![0u8; current.len()];
        self.read_bytes(gpa, &mut cur);
        if cur == current {
            self.write_bytes(gpa, new);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn compare_exchange_split(
        &mut self,
        gpa: u64,
        current: &[u8],
        new: &[u8],
    ) -> Result<bool, MemoryError> {
        assert_eq!(
            gpa >> 12,
            (gpa + current.len() as u64 - 1) >> 12,
            "split lock across pages"
        );
        self.cmpxchg_calls += 1;
        let mut cur = vec![0u8; current.len()];
        self.read_bytes(gpa, &mut cur);
        if cur == current {
            self.write_bytes(gpa, new);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn read_port(&mut self, port: u16, buf: &mut [u8]) -> Result<(), MemoryError> {
        for (k, b) in buf.iter_mut().enumerate() {
            *b = (port as u8).wrapping_add(k as u8);
        }
        self.device_log
            .push((u64::from(port) | 1 << 63, buf.to_vec(), false));
        Ok(())
    }

    fn write_port(&mut self, port: u16, data: &[u8]) -> Result<(), MemoryError> {
        self.device_log
            .push((u64::from(port) | 1 << 63, data.to_vec(), true));
        Ok(())
    }
}

/// A register file.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCpu {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub segs: [SegmentRegister; 6],
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub xcr0: u64,
    pub zmm: [[u8; 64]; 32],
    pub k: [u64; 8],
}

impl TestCpu {
    /// 64-bit mode, CPL 0, 4-level paging with `cr3`, SSE/AVX/AVX-512 enabled.
    pub fn long_mode(cr3: u64) -> Self {
        let data = SegmentRegister {
            selector: 0x10,
            base: 0,
            limit: u32::MAX,
            attributes: SegmentAttributes::FLAT_DATA,
        };
        let mut segs = [data; 6];
        segs[1] = SegmentRegister {
            selector: 0x8,
            attributes: SegmentAttributes::CODE64,
            ..data
        };
        Self {
            gpr: [0; 16],
            rip: 0,
            rflags: 2,
            segs,
            cr0: bits::CR0_PE | bits::CR0_PG | bits::CR0_WP | bits::CR0_AM | 1 << 1,
            cr3,
            cr4: bits::CR4_PAE | bits::CR4_OSFXSR | bits::CR4_OSXSAVE,
            efer: bits::EFER_LME | bits::EFER_LMA | bits::EFER_NXE,
            xcr0: 0xE7,
            zmm: [[0; 64]; 32],
            k: [0; 8],
        }
    }

    /// CPL 3 (user data/code segments with DPL 3).
    pub fn set_user(&mut self) {
        for (n, s) in self.segs.iter_mut().enumerate() {
            s.attributes.0 |= 3 << 5;
            s.selector |= 3;
            let _ = n;
        }
    }

    /// 32-bit protected mode with flat segments, paging off.
    pub fn protected32() -> Self {
        let mut c = Self::long_mode(0);
        c.cr0 = bits::CR0_PE | bits::CR0_AM;
        c.cr4 = bits::CR4_OSFXSR;
        c.efer = 0;
        c.segs[1].attributes = SegmentAttributes::CODE32;
        c
    }

    /// Real mode, paging off, segments with base = selector * 16 and 64 KiB limits.
    pub fn real_mode() -> Self {
        let mut c = Self::long_mode(0);
        c.cr0 = 0;
        c.cr4 = 0;
        c.efer = 0;
        for s in &mut c.segs {
            *s = SegmentRegister {
                selector: 0,
                base: 0,
                limit: 0xFFFF,
                attributes: SegmentAttributes::REAL_MODE,
            };
        }
        c.segs[1].attributes.0 |= 0x8;
        c
    }
}

impl CpuState for TestCpu {
    fn gpr(&mut self, i: usize) -> u64 {
        self.gpr[i]
    }
    fn set_gpr(&mut self, i: usize, v: u64) {
        self.gpr[i] = v;
    }
    fn rip(&mut self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, v: u64) {
        self.rip = v;
    }
    fn rflags(&mut self) -> u64 {
        self.rflags
    }
    fn set_rflags(&mut self, v: u64) {
        self.rflags = v;
    }
    fn segment(&mut self, s: Segment) -> SegmentRegister {
        self.segs[usize::from(s.0).min(5)]
    }
    fn cr0(&mut self) -> u64 {
        self.cr0
    }
    fn cr3(&mut self) -> u64 {
        self.cr3
    }
    fn cr4(&mut self) -> u64 {
        self.cr4
    }
    fn efer(&mut self) -> u64 {
        self.efer
    }
    fn xcr0(&mut self) -> u64 {
        self.xcr0
    }
    fn vector(&mut self, i: usize) -> [u8; 64] {
        self.zmm[i]
    }
    fn set_vector(&mut self, i: usize, v: [u8; 64]) {
        self.zmm[i] = v;
    }
    fn opmask(&mut self, i: usize) -> u64 {
        self.k[i]
    }
}

/// Paging-entry bits.
pub const P: u64 = 1;
pub const RW: u64 = 2;
pub const US: u64 = 4;
pub const A: u64 = 0x20;
pub const D: u64 = 0x40;
pub const PS: u64 = 0x80;
pub const XD: u64 = 1 << 63;

/// Builds 4-level (or 5-level) page tables in `mem`, allocating table pages from `next`.
pub struct Tables {
    pub root: u64,
    pub next: u64,
    pub levels: u32,
}

impl Tables {
    pub fn new(mem: &mut SparseMemory, root: u64, levels: u32) -> Self {
        mem.write_bytes(root, &[0; 4096]);
        Self {
            root,
            next: root + 0x1000,
            levels,
        }
    }

    /// Maps the 4 KiB page at `la` to `gpa` with `flags` on the leaf; intermediate entries get
    /// `upper` (P is always set on them).
    pub fn map(&mut self, mem: &mut SparseMemory, la: u64, gpa: u64, flags: u64, upper: u64) {
        let mut table = self.root;
        for level in (1..self.levels).rev() {
            let shift = 12 + 9 * level;
            let idx = (la >> shift) & 0x1FF;
            let e = mem.read_u64(table + idx * 8);
            if e & P == 0 {
                let t = self.next;
                self.next += 0x1000;
                mem.write_bytes(t, &[0; 4096]);
                mem.write_u64(table + idx * 8, t | P | upper);
                table = t;
            } else {
                mem.write_u64(table + idx * 8, (e & !0xFFF & !XD) | P | upper);
                table = e & 0x000F_FFFF_FFFF_F000;
            }
        }
        mem.write_u64(table + ((la >> 12) & 0x1FF) * 8, (gpa & !0xFFF) | flags);
    }

    /// The address of the leaf entry (level 1) for `la` (must be mapped).
    pub fn leaf(&self, mem: &SparseMemory, la: u64) -> u64 {
        let mut table = self.root;
        for level in (1..self.levels).rev() {
            let e = mem.read_u64(table + ((la >> (12 + 9 * level)) & 0x1FF) * 8);
            table = e & 0x000F_FFFF_FFFF_F000;
        }
        table + ((la >> 12) & 0x1FF) * 8
    }
}
