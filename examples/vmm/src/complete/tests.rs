//! Instruction completion against guest page tables in RAM: what the tables allow completes
//! (and sets the accessed and dirty bits), what they refuse is a fault left to the emulator.

use super::{complete_on, CompleteError, Completed, CpuState};
use crate::long_mode::{cr0, cr4, efer};
use crate::memory::GuestMemory;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const ACCESSED: u64 = 1 << 5;
const DIRTY: u64 = 1 << 6;
const NO_EXECUTE: u64 = 1 << 63;
const EFER_NXE: u64 = 1 << 11;
const CR4_SMEP: u64 = 1 << 20;
const CR4_SMAP: u64 = 1 << 21;
const RFLAGS_AC: u64 = 1 << 18;

/// The page tables: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, and one page table at
/// 0x4000 mapping the 4 KiB pages of 0x400000.. (page `n` at guest-physical 0x10000 + n
/// pages). The upper levels allow everything; each page's own entry decides.
const PML4: u64 = 0x1000;
const PT: u64 = 0x4000;
const BASE: u64 = 0x40_0000;

/// The pages, by number.
const KERNEL_CODE: u64 = 0;
const KERNEL_RW: u64 = 1;
const KERNEL_RO: u64 = 2;
const USER_CODE: u64 = 3;
const USER_RW: u64 = 4;
const NX_CODE: u64 = 5;
/// Code up to the end of its page, followed by a page that is not present.
const EDGE_CODE: u64 = 7;
const ABSENT: u64 = 8;

/// `movd [rax], xmm0`, `movd xmm0, [rax]`, `movq [rax], xmm0`, `xorps xmm0, [rax]`, and
/// `movd [rax + 8], xmm0` (five bytes).
const STORE: &[u8] = &[0x66, 0x0f, 0x7e, 0x00];
const LOAD: &[u8] = &[0x66, 0x0f, 0x6e, 0x00];
const STORE_QWORD: &[u8] = &[0x66, 0x48, 0x0f, 0x7e, 0x00];
const XOR_16: &[u8] = &[0x0f, 0x57, 0x00];
const STORE_DISP8: &[u8] = &[0x66, 0x0f, 0x7e, 0x40, 0x08];

const XMM0: [u8; 16] = [
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
];

fn va(page: u64) -> u64 {
    BASE + page * 4096
}

fn gpa(page: u64) -> u64 {
    0x10000 + page * 4096
}

fn pte_address(page: u64) -> u64 {
    PT + page * 8
}

/// Guest RAM with the tables and every page but [`ABSENT`] mapped.
fn memory() -> GuestMemory {
    let mem = GuestMemory::new(1 << 20).expect("memory");
    let table = PRESENT | WRITABLE | USER;
    mem.write_at(PML4, &(0x2000 | table).to_le_bytes())
        .expect("pml4");
    mem.write_at(0x2000, &(0x3000 | table).to_le_bytes())
        .expect("pdpt");
    // PD entry 2: 0x400000..0x600000.
    mem.write_at(0x3000 + 2 * 8, &(PT | table).to_le_bytes())
        .expect("pd");
    let pages = [
        (KERNEL_CODE, PRESENT),
        (KERNEL_RW, PRESENT | WRITABLE),
        (KERNEL_RO, PRESENT),
        (USER_CODE, PRESENT | USER),
        (USER_RW, PRESENT | WRITABLE | USER),
        (NX_CODE, PRESENT | NO_EXECUTE),
        (EDGE_CODE, PRESENT),
    ];
    for (page, flags) in pages {
        mem.write_at(pte_address(page), &(gpa(page) | flags).to_le_bytes())
            .expect("pte");
    }
    mem
}

fn pte(mem: &GuestMemory, page: u64) -> u64 {
    let mut b = [0u8; 8];
    mem.read_at(pte_address(page), &mut b).expect("pte");
    u64::from_le_bytes(b)
}

/// `code` at the start of page `page` (or at `offset` in it).
fn place(mem: &GuestMemory, page: u64, offset: u64, code: &[u8]) -> u64 {
    mem.write_at(gpa(page) + offset, code).expect("code");
    va(page) + offset
}

/// A 64-bit vCPU at `rip` (CPL 3 if `user`) with RAX = `rax`, XMM0 = [`XMM0`], write
/// protection and NX on.
fn cpu(rip: u64, user: bool, rax: u64) -> CpuState {
    let mut c = CpuState::default();
    c.regs.rip = rip;
    c.regs.rax = rax;
    c.regs.rflags = 2;
    c.sregs.cs.l = 1;
    c.sregs.cs.selector = if user { 0x2b } else { 0x08 };
    c.sregs.cr0 = cr0::PE | cr0::PG | cr0::WP;
    c.sregs.cr3 = PML4;
    c.sregs.cr4 = cr4::PAE | cr4::OSFXSR;
    c.sregs.efer = efer::LME | efer::LMA | EFER_NXE;
    c.fpu.xmm[0] = XMM0;
    c
}

fn faults_at(result: Result<Completed, CompleteError>, at: u64) -> bool {
    matches!(result, Err(CompleteError::Fault { gva }) if gva == at)
}

fn bytes(mem: &GuestMemory, page: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    mem.read_at(gpa(page) + offset, &mut b).expect("read");
    b
}

#[test]
fn a_store_to_a_writable_page_completes_and_sets_accessed_and_dirty() {
    let mem = memory();
    let rip = place(&mem, KERNEL_CODE, 0, STORE);
    let mut c = cpu(rip, false, va(KERNEL_RW) + 0x10);
    let done = complete_on(&mut c, &mem).expect("completes");
    assert_eq!(
        done,
        Completed {
            len: 4,
            fpu_changed: false
        }
    );
    assert_eq!(c.regs.rip, rip + 4);
    assert_eq!(bytes(&mem, KERNEL_RW, 0x10, 4), XMM0[..4]);
    assert_eq!(pte(&mem, KERNEL_RW) & (ACCESSED | DIRTY), ACCESSED | DIRTY);
    assert_eq!(
        pte(&mem, KERNEL_CODE) & (ACCESSED | DIRTY),
        ACCESSED,
        "fetched"
    );
}

#[test]
fn a_kernel_store_to_a_read_only_page_faults_under_write_protect() {
    let mem = memory();
    let rip = place(&mem, KERNEL_CODE, 0, STORE);
    let target = va(KERNEL_RO) + 0x20;
    let mut c = cpu(rip, false, target);
    assert!(faults_at(complete_on(&mut c, &mem), target));
    assert_eq!(c.regs.rip, rip, "nothing changed");
    assert_eq!(bytes(&mem, KERNEL_RO, 0x20, 4), [0; 4]);
    assert_eq!(pte(&mem, KERNEL_RO) & DIRTY, 0);
    // Reading it is allowed.
    let rip = place(&mem, KERNEL_CODE, 0, LOAD);
    let mut c = cpu(rip, false, target);
    complete_on(&mut c, &mem).expect("a read of a read-only page");
    // Without CR0.WP the kernel may write read-only pages.
    let rip = place(&mem, KERNEL_CODE, 0, STORE);
    let mut c = cpu(rip, false, target);
    c.sregs.cr0 &= !cr0::WP;
    complete_on(&mut c, &mem).expect("CR0.WP clear");
    assert_eq!(bytes(&mem, KERNEL_RO, 0x20, 4), XMM0[..4]);
}

#[test]
fn a_user_store_to_a_read_only_page_faults_even_without_write_protect() {
    let mem = memory();
    mem.write_at(
        pte_address(USER_RW),
        &(gpa(USER_RW) | PRESENT | USER).to_le_bytes(),
    )
    .expect("pte");
    let rip = place(&mem, USER_CODE, 0, STORE);
    let mut c = cpu(rip, true, va(USER_RW));
    c.sregs.cr0 &= !cr0::WP;
    assert!(faults_at(complete_on(&mut c, &mem), va(USER_RW)));
}

#[test]
fn a_user_access_to_a_supervisor_page_faults() {
    let mem = memory();
    mem.write_at(gpa(USER_RW), &[1, 2, 3, 4]).expect("data");
    mem.write_at(gpa(KERNEL_RW), &[5, 6, 7, 8]).expect("data");
    let rip = place(&mem, USER_CODE, 0, LOAD);
    let mut c = cpu(rip, true, va(KERNEL_RW));
    assert!(faults_at(complete_on(&mut c, &mem), va(KERNEL_RW)));
    assert_eq!(c.fpu.xmm[0], XMM0, "nothing changed");
    // A user page is the user's to read and write.
    let mut c = cpu(rip, true, va(USER_RW));
    let done = complete_on(&mut c, &mem).expect("a user read of a user page");
    assert!(done.fpu_changed);
    assert_eq!(c.fpu.xmm[0][..8], [1, 2, 3, 4, 0, 0, 0, 0]);
    let rip = place(&mem, USER_CODE, 0, STORE);
    let mut c = cpu(rip, true, va(USER_RW) + 8);
    complete_on(&mut c, &mem).expect("a user write to a user page");
    assert_eq!(bytes(&mem, USER_RW, 8, 4), XMM0[..4]);
    // The kernel reaches user pages (no SMAP) ...
    let rip = place(&mem, KERNEL_CODE, 0, LOAD);
    let mut c = cpu(rip, false, va(USER_RW));
    complete_on(&mut c, &mem).expect("a kernel read of a user page");
    // ... unless SMAP forbids it, which RFLAGS.AC lifts.
    let mut c = cpu(rip, false, va(USER_RW));
    c.sregs.cr4 |= CR4_SMAP;
    assert!(faults_at(complete_on(&mut c, &mem), va(USER_RW)));
    c.regs.rflags |= RFLAGS_AC;
    complete_on(&mut c, &mem).expect("SMAP with RFLAGS.AC");
}

#[test]
fn a_user_fetch_from_a_supervisor_page_faults() {
    let mem = memory();
    let rip = place(&mem, KERNEL_CODE, 0, STORE);
    let mut c = cpu(rip, true, va(USER_RW));
    assert!(faults_at(complete_on(&mut c, &mem), rip));
}

#[test]
fn a_fetch_from_a_no_execute_page_faults() {
    let mem = memory();
    let rip = place(&mem, NX_CODE, 0, STORE);
    let mut c = cpu(rip, false, va(KERNEL_RW));
    assert!(faults_at(complete_on(&mut c, &mem), rip));
    assert_eq!(bytes(&mem, KERNEL_RW, 0, 4), [0; 4], "not executed");
    // Without EFER.NXE the XD bit is reserved: still a fault.
    c.sregs.efer &= !EFER_NXE;
    assert!(faults_at(complete_on(&mut c, &mem), rip));
    // Reading the page as data is allowed.
    let code = place(&mem, KERNEL_CODE, 0, LOAD);
    let mut c = cpu(code, false, rip);
    complete_on(&mut c, &mem).expect("a data read of a no-execute page");
    assert_eq!(c.fpu.xmm[0][..4], STORE[..]);
}

#[test]
fn smep_keeps_the_kernel_from_executing_user_pages() {
    let mem = memory();
    let rip = place(&mem, USER_CODE, 0, STORE);
    let mut c = cpu(rip, false, va(KERNEL_RW));
    complete_on(&mut c, &mem).expect("no SMEP");
    let mut c = cpu(rip, false, va(KERNEL_RW));
    c.sregs.cr4 |= CR4_SMEP;
    assert!(faults_at(complete_on(&mut c, &mem), rip));
}

#[test]
fn an_instruction_is_fetched_only_as_far_as_it_goes() {
    let mem = memory();
    // Four bytes that end the page: the absent page after them is not touched.
    let rip = place(&mem, EDGE_CODE, 4092, STORE);
    let mut c = cpu(rip, false, va(KERNEL_RW));
    let done = complete_on(&mut c, &mem).expect("ends inside its page");
    assert_eq!(done.len, 4);
    // Five bytes: the last is on the absent page.
    let rip = place(&mem, EDGE_CODE, 4092, &STORE_DISP8[..4]);
    let mut c = cpu(rip, false, va(KERNEL_RW));
    assert!(faults_at(complete_on(&mut c, &mem), va(ABSENT)));
}

#[test]
fn an_access_over_two_pages_needs_both() {
    let mem = memory();
    // Eight bytes from the last four of the writable page into the read-only one: nothing
    // is written, not even the allowed half.
    let rip = place(&mem, KERNEL_CODE, 0, STORE_QWORD);
    let mut c = cpu(rip, false, va(KERNEL_RW) + 4092);
    assert!(faults_at(complete_on(&mut c, &mem), va(KERNEL_RO)));
    assert_eq!(bytes(&mem, KERNEL_RW, 4092, 4), [0; 4]);
    // Reading across them is allowed, and across into the absent page is not.
    mem.write_at(gpa(KERNEL_RW) + 4088, &[0xff; 8])
        .expect("data");
    let rip = place(&mem, KERNEL_CODE, 0, XOR_16);
    let mut c = cpu(rip, false, va(KERNEL_RW) + 4088);
    complete_on(&mut c, &mem).expect("a read over two pages");
    let mut expected = XMM0;
    for b in &mut expected[..8] {
        *b ^= 0xff;
    }
    assert_eq!(c.fpu.xmm[0], expected);
    let mut c = cpu(rip, false, va(EDGE_CODE) + 4088);
    assert!(faults_at(complete_on(&mut c, &mem), va(ABSENT)));
}

#[test]
fn a_non_canonical_or_unmapped_address_faults() {
    let mem = memory();
    let rip = place(&mem, KERNEL_CODE, 0, LOAD);
    let mut c = cpu(rip, false, 0x8000_0000_0000);
    assert!(faults_at(complete_on(&mut c, &mem), 0x8000_0000_0000));
    let mut c = cpu(rip, false, va(ABSENT));
    assert!(faults_at(complete_on(&mut c, &mem), va(ABSENT)));
}
