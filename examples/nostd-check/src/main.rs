//! `nostd-check`: links every viridian library crate, built with `default-features = false`,
//! into a freestanding `#![no_std]` executable and calls into each of them.
//!
//! The binary is its own program: `_start` runs the checks below, then exits through the
//! `exit_group` system call with the number of failed checks as the status. `scripts/test`
//! builds it and runs it, so it proves both that the crates *link* without `std` and that what
//! they compute without `std` is right.
//!
//! Each crate's issue adds a check here when the crate gains code; a crate without one yet is
//! still linked (see `Cargo.toml`), so a `std` dependency in it breaks this build.

#![no_std]
#![no_main]
// The entry point, the allocator and the exit system call are inherently unsafe; each block says why.
#![allow(unsafe_code)]

extern crate alloc;

// The C memory functions (`memcpy`, `memset` …): this binary links no C library. Shared with
// the test guest, which has the same need.
#[path = "../../guest/src/mem.rs"]
mod mem;
mod rt;

/// A named check: returns whether it passed.
type Check = (&'static str, fn() -> bool);

/// Runs every check and returns how many failed.
fn run_checks() -> i32 {
    let checks: &[Check] = &[
        ("vhd-format: CHS geometry and footer checksum", vhd_defs),
        (
            "vhd-format: dynamic disk write/read/check in memory",
            vhd_dynamic,
        ),
        (
            "hv-hypercall: cpuid, hypercall page, dispatch, synic message",
            hv_hypercall_check,
        ),
        (
            "vmbus-ring: GPA-direct packet through a static ring, guest buffer copied out",
            vmbus_ring_check,
        ),
        (
            "x86-decode: decode (RIP-relative, truncation, invalid); emulate an MMIO store and a locked add",
            x86_decode_check,
        ),
        (
            "vswitch-core: flood with egress tagging, learning, known unicast untagged",
            vswitch_check,
        ),
        (
            "wim-image: LZX chunk (no heap) and LZMS chunk (alloc) from wimlib",
            wim_image_check,
        ),
        (
            "wim-image: open an in-memory WIM, XML, tree walk, read a file by path",
            wim_container_check,
        ),
        (
            "wim-image: compress a chunk with each codec (alloc), decode it back; raw when it won't shrink",
            wim_compress_check,
        ),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        if check() {
            rt::write_stdout(b"ok   ");
        } else {
            rt::write_stdout(b"FAIL ");
            failed += 1;
        }
        rt::write_stdout(name.as_bytes());
        rt::write_stdout(b"\n");
    }
    failed
}

// The process entry point (no C runtime: linked with `-nostartfiles`). The kernel enters
// `_start` with `rsp` 16-byte aligned, but Rust functions expect the alignment a `call`
// leaves (`rsp` ≡ 8 mod 16), so `_start` aligns the stack and calls the Rust entry.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym nostd_main,
);

/// Runs the checks and exits with the number that failed.
extern "C" fn nostd_main() -> ! {
    let failed = run_checks();
    rt::exit(failed)
}

/// The definitions layer: the spec's CHS table and a self-consistent footer, `core` only.
fn vhd_defs() -> bool {
    use vhd_format::defs::{DiskType, Footer, Geometry, Uuid, VhdTime};
    let g = Geometry::for_size(1 << 30);
    let footer = Footer::new(DiskType::FIXED, 1 << 30, None, VhdTime(0), Uuid([1; 16]));
    (g.cylinders, g.heads, g.sectors_per_track) == (2080, 16, 63) && footer.checksum_ok()
}

/// The I/O layer with only `alloc`: create, write, reopen, read back, check.
fn vhd_dynamic() -> bool {
    use vhd_format::defs::Uuid;
    use vhd_format::{create_dynamic, ops, CreateOptions, Disk, MemStorage, OpenOptions, Vhd};
    let options = CreateOptions::new(1 << 20)
        .block_size(64 << 10)
        .unique_id(Uuid([2; 16]));
    let Ok(mut disk) = create_dynamic(MemStorage::new(), &options) else {
        return false;
    };
    if disk.write_at(70_000, b"no_std").is_err() {
        return false;
    }
    let Ok(disk) = Vhd::open(disk.into_storage(), OpenOptions::new()) else {
        return false;
    };
    let mut buf = [0u8; 6];
    disk.read_at(70_000, &mut buf).is_ok()
        && &buf == b"no_std"
        && ops::check(disk.storage()).is_ok_and(|r| r.is_clean())
}

/// hv-hypercall with no heap: CPUID leaves, the port-I/O hypercall page, a fast `HvSignalEvent`
/// and a slow `HvPostMessage` through the dispatcher, and a SynIC message delivered into the
/// guest's message page and taken out again by the guest side.
fn hv_hypercall_check() -> bool {
    use hv_hypercall::cpuid_builder::Enlightenments;
    use hv_hypercall::defs::{
        HvMessage, HvMessageType, HvMsr, HvStatus, HypercallCode, HypercallInput, PostMessageInput,
        SignalEventInput,
    };
    use hv_hypercall::dispatch::{
        CallingConvention, DispatchConfig, Dispatcher, HypercallHandler, PostMessageRequest,
        SignalEventRequest, X64Registers,
    };
    use hv_hypercall::guest::{receive_message, MsrAccess, MsrFault};
    use hv_hypercall::hypercall_page::{HypercallPage, HypercallPageKind};
    use hv_hypercall::memory::{ArrayMemory, GuestMemory};
    use hv_hypercall::synic::{
        InterruptSink, Partition, PartitionConfig, ReferenceClock, SintInterrupt, VirtualProcessor,
        VpEnv,
    };

    struct Count(u32);
    impl HypercallHandler for Count {
        fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
            self.0 += r.payload.len() as u32;
            HvStatus::SUCCESS
        }
        fn signal_event(&mut self, r: SignalEventRequest) -> HvStatus {
            self.0 += u32::from(r.flag_number);
            HvStatus::SUCCESS
        }
    }
    struct Clock;
    impl ReferenceClock for Clock {
        fn reference_time(&self) -> u64 {
            0
        }
    }
    struct Sink(u32);
    impl InterruptSink for Sink {
        fn request_interrupt(&mut self, i: SintInterrupt) {
            self.0 += u32::from(i.vector);
        }
    }
    struct NoMsr;
    impl MsrAccess for NoMsr {
        fn read_msr(&mut self, msr: u32) -> Result<u64, MsrFault> {
            Err(MsrFault { msr })
        }
        fn write_msr(&mut self, msr: u32, _: u64) -> Result<(), MsrFault> {
            Err(MsrFault { msr })
        }
    }

    let features = Enlightenments::linux_vmbus(1);
    let Ok(leaves) = features.cpuid_leaves() else {
        return false;
    };
    let Ok(kind) = HypercallPageKind::port_io(0x99) else {
        return false;
    };
    let page = HypercallPage::new(kind);
    let memory = ArrayMemory::<1024>::new(); // 8 KiB of guest RAM, no heap
    let mut dispatcher = Dispatcher::new(DispatchConfig::default());
    let mut handler = Count(0);

    // Fast HvSignalEvent: the input in RDX.
    let mut regs = X64Registers {
        rcx: HypercallInput::simple(HypercallCode::SIGNAL_EVENT)
            .with_fast(true)
            .0,
        rdx: SignalEventInput::new(1, 5).to_u64(),
        ..Default::default()
    };
    dispatcher.dispatch(CallingConvention::X64, &mut regs, &memory, &mut handler);
    let fast_ok = regs.rax == 0 && handler.0 == 5;

    // Slow HvPostMessage: the 256-byte input block in guest memory.
    let Some(block) = PostMessageInput::new(1, 1, b"no_std") else {
        return false;
    };
    let mut regs = X64Registers {
        rcx: HypercallInput::simple(HypercallCode::POST_MESSAGE).0,
        rdx: 0x1000,
        ..Default::default()
    };
    let slow_ok = memory.write(0x1000, &block.to_bytes()).is_ok()
        && dispatcher
            .dispatch(CallingConvention::X64, &mut regs, &memory, &mut handler)
            .result()
            .is_some_and(|r| r.is_success())
        && handler.0 == 11;

    // SynIC: enable the message page and SINT 2, post, and take the message as the guest.
    let partition = Partition::new(PartitionConfig::new(page, &features));
    let mut vp: VirtualProcessor = VirtualProcessor::new(0);
    let mut sink = Sink(0);
    let mut env = VpEnv {
        partition: &partition,
        memory: &memory,
        clock: &Clock,
        interrupts: &mut sink,
    };
    let msrs_ok = vp.write_msr(&mut env, HvMsr::SIMP.0, 0x1000 | 1).is_ok()
        && vp.write_msr(&mut env, HvMsr::SINT2.0, 0xf3).is_ok()
        && vp.write_msr(&mut env, HvMsr::SINT2.0, 0x0f).is_err();
    let Some(msg) = HvMessage::new(HvMessageType::VMBUS, 1, b"synic") else {
        return false;
    };
    let posted = vp.post_message(&memory, &mut sink, 2, &msg).is_ok();
    let received = matches!(
        receive_message(&memory, &mut NoMsr, 0x1000, 2),
        Ok(Some(m)) if m.payload() == b"synic"
    );
    leaves
        .get(0x4000_0001)
        .is_some_and(|l| l.eax == u32::from_le_bytes(*b"Hv#1"))
        && page.bytes()[..4] == [0xf3, 0x0f, 0x1e, 0xfa]
        && fast_ok
        && slow_ok
        && msrs_ok
        && posted
        && received
        && sink.0 == 0xf3
}

/// vmbus-ring with only `core`: a GPA-direct packet written and read back through a flat ring
/// in a `static`, parsed, and the guest buffer it describes copied out of `static` "guest RAM".
fn vmbus_ring_check() -> bool {
    use core::sync::atomic::AtomicU64;
    use vmbus_ring::gpadl::{GpaBuffer, GpaRange, GpaRanges, GuestRam};
    use vmbus_ring::memory::FlatRingMemory;
    use vmbus_ring::packet::{PacketKind, PacketRepr};
    use vmbus_ring::ring::{RingReader, RingWriter};

    // A control page and one data page; two pages of guest RAM at PFN 0x10.
    static RING: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];
    static RAM: [AtomicU64; 1024] = [const { AtomicU64::new(0) }; 1024];
    let (Ok(mem), Ok(ram)) = (
        FlatRingMemory::new(&RING[..]),
        GuestRam::new(0x10, &RAM[..]),
    ) else {
        return false;
    };
    let (Ok(mut writer), Ok(mut reader)) = (RingWriter::new(&mem), RingReader::new(&mem)) else {
        return false;
    };
    // 12 bytes straddling the two pages.
    if !ram.write_gpa(0x10_ffa, b"no_std vmbus") {
        return false;
    }
    let pfns = [0x10, 0x11];
    let mut range_bytes = [0u8; 32];
    let Ok(ranges) = GpaRanges::encode(&[GpaRange::new(0xffa, 12, &pfns)], &mut range_bytes) else {
        return false;
    };
    let Ok(sent) = writer.write(&PacketRepr::gpa_direct(7, true, ranges, b"io")) else {
        return false;
    };
    let mut buf = [0u8; 128];
    let Ok((len, released)) = reader.read(&mut buf) else {
        return false;
    };
    let Ok(packet) = PacketRepr::parse_bytes(&buf[..len]) else {
        return false;
    };
    let PacketKind::GpaDirect { ranges } = packet.kind else {
        return false;
    };
    let Ok(data) = GpaBuffer::new(ranges, &ram) else {
        return false;
    };
    let mut copy = [0u8; 12];
    sent.must_signal
        && !released.more
        && packet.transaction_id == 7
        && data.read_at(0, &mut copy).is_ok()
        && &copy == b"no_std vmbus"
}

/// x86-decode: a RIP-relative store, a truncated window and an undefined opcode, without std.
fn x86_decode_check() -> bool {
    use x86_decode::{DecodeError, Decoder, Mode, Register};
    let d = Decoder::new(Mode::Bits64);
    let store = matches!(
        d.decode(&[0xC7, 0x05, 0x10, 0, 0, 0, 1, 0, 0, 0], 0x1000),
        Ok(i) if i.len() == 10 && i.memory_base() == Register::RIP && i.ip_relative_target() == Some(0x101A)
    );
    let short = d.decode(&[0xC7, 0x05], 0) == Err(DecodeError::NeedMoreBytes { have: 2 });
    let bad = matches!(d.decode(&[0xD6], 0), Err(DecodeError::Invalid(_)));
    store && short && bad && x86_emulate_check()
}

/// x86-decode's emulator without `std`: `mov [rip+0x10], eax` completed against a device page
/// in 64-bit mode with paging off in the emulator's view (identity), and a locked `add` on RAM
/// through the compare-exchange callback.
fn x86_emulate_check() -> bool {
    use x86_decode::emulate::{
        CpuState, Emulator, Memory, MemoryError, Options, Outcome, Region, SegmentAttributes,
        SegmentRegister,
    };
    use x86_decode::Segment;
    struct Cpu {
        gpr: [u64; 16],
        rip: u64,
        rflags: u64,
    }
    impl CpuState for Cpu {
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
            let attributes = if s == Segment::CS {
                SegmentAttributes::CODE64
            } else {
                SegmentAttributes::FLAT_DATA
            };
            SegmentRegister {
                selector: 0,
                base: 0,
                limit: u32::MAX,
                attributes,
            }
        }
        fn cr0(&mut self) -> u64 {
            1
        }
        fn cr3(&mut self) -> u64 {
            0
        }
        fn cr4(&mut self) -> u64 {
            0x20
        }
        fn efer(&mut self) -> u64 {
            0x500
        }
        fn xcr0(&mut self) -> u64 {
            1
        }
        fn vector(&mut self, _: usize) -> [u8; 64] {
            [0; 64]
        }
        fn set_vector(&mut self, _: usize, _: [u8; 64]) {}
        fn opmask(&mut self, _: usize) -> u64 {
            0
        }
    }
    /// 4 KiB of RAM at 0 and a device page at 0x1000 that keeps its last write.
    struct Mem {
        ram: [u8; 0x1000],
        mmio: u32,
    }
    impl Memory for Mem {
        fn region(&mut self, gpa: u64) -> Region {
            if gpa >= 0x1000 {
                Region::Device
            } else {
                Region::Ram
            }
        }
        fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            let at = gpa as usize;
            buf.copy_from_slice(
                self.ram
                    .get(at..at + buf.len())
                    .ok_or(MemoryError::Unmapped(gpa))?,
            );
            Ok(())
        }
        fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
            if gpa >= 0x1000 {
                let mut b = [0u8; 4];
                b[..data.len().min(4)].copy_from_slice(&data[..data.len().min(4)]);
                self.mmio = u32::from_le_bytes(b);
                return Ok(());
            }
            let at = gpa as usize;
            self.ram
                .get_mut(at..at + data.len())
                .ok_or(MemoryError::Unmapped(gpa))?
                .copy_from_slice(data);
            Ok(())
        }
        fn compare_exchange(
            &mut self,
            gpa: u64,
            cur: &[u8],
            new: &[u8],
        ) -> Result<bool, MemoryError> {
            let at = gpa as usize;
            let cell = self
                .ram
                .get_mut(at..at + cur.len())
                .ok_or(MemoryError::NotAtomic(gpa))?;
            let same = cell == cur;
            if same {
                cell.copy_from_slice(new);
            }
            Ok(same)
        }
    }
    let mut cpu = Cpu {
        gpr: [0; 16],
        rip: 0x100,
        rflags: 2,
    };
    cpu.gpr[0] = 0x1234_5678;
    let mut mem = Mem {
        ram: [0; 0x1000],
        mmio: 0,
    };
    let mut emu = Emulator::new(Options::default());
    // mov [rip + 0xefa], eax: the next RIP is 0x106, so the store goes to 0x1000 (the device).
    let store = emu.emulate(&mut cpu, &mut mem, &[0x89, 0x05, 0xFA, 0x0E, 0, 0]);
    let stored = store == Ok(Outcome::Completed) && mem.mmio == 0x1234_5678 && cpu.rip == 0x106;
    // lock add dword [rdi], eax on RAM.
    cpu.gpr[7] = 0x800;
    mem.ram[0x800] = 1;
    let add = emu.emulate(&mut cpu, &mut mem, &[0xF0, 0x01, 0x07]);
    let added = add == Ok(Outcome::Completed) && mem.ram[0x800] == 0x79 && cpu.rip == 0x109;
    stored && added
}

/// vswitch-core with only `alloc`: a VM port in access VLAN 10 and a trunk. A broadcast from
/// the VM floods to the trunk tagged with VID 10; the reply from the trunk goes to the learned
/// VM port only, untagged and re-padded to 60 bytes.
fn vswitch_check() -> bool {
    use vswitch_core::batch::TxData;
    use vswitch_core::frame::MacAddr;
    use vswitch_core::vlan::{Edit, VlanConfig, VlanSet};
    use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, RxFrame, TxBatch};

    let vm_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let peer = MacAddr([2, 0, 0, 0, 0, 2]);
    let mut br = Bridge::new(BridgeConfig::new(HashKey::from_seed(0x6e6f_7374)));
    let Ok(vm) = br.add_port(PortConfig::vm(vm_mac).with_vlan(VlanConfig::access(10))) else {
        return false;
    };
    let trunk_cfg =
        PortConfig::plain().with_vlan(VlanConfig::trunk(VlanSet::from_vids(&[10]), None));
    let Ok(trunk) = br.add_port(trunk_cfg) else {
        return false;
    };
    let mut bcast = [0u8; 60];
    bcast[..6].copy_from_slice(&MacAddr::BROADCAST.0);
    bcast[6..12].copy_from_slice(&vm_mac.0);
    bcast[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut out = TxBatch::new();
    let frames = [RxFrame::new(vm, &bcast)];
    br.process(&frames, 1, &mut out);
    let mut buf = [0u8; 64];
    let flooded = matches!(out.actions(), [a] if a.port == trunk
        && out.write(a, &frames, &mut buf) == Some(64)
        && buf[12..16] == [0x81, 0x00, 0x00, 10]
        && buf[16..18] == [0x08, 0x06]);

    let mut reply = [0u8; 60];
    reply[..6].copy_from_slice(&vm_mac.0);
    reply[6..12].copy_from_slice(&peer.0);
    reply[12..18].copy_from_slice(&[0x81, 0x00, 0x00, 10, 0x08, 0x06]);
    let frames = [RxFrame::new(trunk, &reply)];
    br.process(&frames, 2, &mut out);
    let unicast = matches!(out.actions(), [a] if a.port == vm
        && a.data == TxData::Frame(Edit::PopTag)
        && out.write(a, &frames, &mut buf) == Some(60)
        && buf[12..14] == [0x08, 0x06]
        && buf[56..60] == [0; 4]);
    flooded && unicast && br.lookup(10, peer, 2) == Some(trunk) && br.fdb().len() == 2
}

/// wim-image's codecs without std: an LZX chunk through the core-only `LzxDecoder` (on the
/// stack, no heap), an LZMS chunk through the reusable `Decompressor` (heap state), and a
/// truncated chunk giving a typed error. The chunks are what wimlib 1.13 (`wimlib_compress`,
/// level 50) made of the text below, three times over.
fn wim_image_check() -> bool {
    use wim_image::codec::{Codec, DecompressError, Decompressor, LzxDecoder};
    const TEXT: &[u8] = b"no_std wim-image: XPRESS, LZX and LZMS chunks decode without std. ";
    const LZX: [u8; 104] = [
        0x0c, 0x20, 0x00, 0x62, 0x00, 0x00, 0x00, 0x00, 0x34, 0x23, 0x34, 0x00, 0x67, 0x0f, 0x57,
        0x67, 0x99, 0x3b, 0xa0, 0xc4, 0xc1, 0x8c, 0x02, 0x07, 0x5a, 0x42, 0x09, 0x32, 0x02, 0x2d,
        0x3f, 0x58, 0xff, 0xff, 0x00, 0xb8, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x08, 0x0c, 0x00, 0xd9,
        0x41, 0xe6, 0x3d, 0xf3, 0x7d, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x84, 0x08,
        0xdf, 0x27, 0x7d, 0xfe, 0x11, 0xf1, 0xab, 0x7a, 0xf6, 0x10, 0xc6, 0x74, 0x87, 0x74, 0x98,
        0x67, 0xfc, 0x7e, 0xe7, 0x68, 0x35, 0x60, 0xe2, 0xe5, 0x5f, 0x08, 0x38, 0x5b, 0x56, 0x46,
        0x2a, 0x4f, 0xe2, 0x08, 0x77, 0xa4, 0x92, 0x06, 0x85, 0xd9, 0x20, 0xf3, 0xc8, 0x9f,
    ];
    const LZMS: [u8; 76] = [
        0xef, 0x50, 0x93, 0x34, 0xef, 0x3f, 0x80, 0xe6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0xbf,
        0xd5, 0x0d, 0xc4, 0xc5, 0x2a, 0x05, 0xa1, 0xab, 0x7b, 0x43, 0xa3, 0xb3, 0x32, 0xab, 0xf2,
        0x36, 0x56, 0x46, 0x06, 0x32, 0xb7, 0xe6, 0x56, 0x87, 0x36, 0x06, 0x32, 0xd5, 0x64, 0x25,
        0x32, 0xb7, 0x30, 0x10, 0x2c, 0x2d, 0x26, 0x10, 0x96, 0xa9, 0xa9, 0x22, 0x29, 0x28, 0x2c,
        0x10, 0x9d, 0xb2, 0xb3, 0xb0, 0x8a, 0xb4, 0xb4, 0xa5, 0xdd, 0x81, 0x54, 0x73, 0x5f, 0x6f,
        0x6e,
    ];
    let expected = |out: &[u8]| out.chunks(TEXT.len()).all(|c| c == TEXT);
    let mut out = [0u8; 3 * TEXT.len()];
    let lzx_ok = LzxDecoder::new()
        .decompress(&LZX, &mut out, 32 << 10)
        .is_ok()
        && expected(&out);
    out.fill(0);
    let mut lzms = Decompressor::new(Codec::Lzms);
    let lzms_ok = lzms.decompress(&LZMS, &mut out).is_ok() && expected(&out);
    let truncated = matches!(
        lzms.decompress(&LZMS[..LZMS.len() - 20], &mut out),
        Err(DecompressError::Truncated { .. }
            | DecompressError::MatchDistance { .. }
            | DecompressError::MatchLength { .. })
    );
    lzx_ok && lzms_ok && truncated
}

/// wim-image's compressors without std (they need `alloc`): one chunk of repetitive text
/// per codec at the default level, decoded back by the matching `Decompressor`; a chunk of
/// noise comes back as `None` (stored raw).
fn wim_compress_check() -> bool {
    use wim_image::codec::{Codec, Compressor, Decompressor, Level};
    const TEXT: &[u8] = b"no_std wim-image: XPRESS, LZX and LZMS chunks compress without std. ";
    let mut chunk = [0u8; 16 * TEXT.len()];
    for (c, t) in chunk.chunks_mut(TEXT.len()).zip(core::iter::repeat(TEXT)) {
        c.copy_from_slice(t);
    }
    let mut noise = [0u8; 512];
    let mut x = 0x2545_f491u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    [Codec::Xpress, Codec::Lzx, Codec::Lzms]
        .into_iter()
        .all(|codec| {
            let Ok(mut c) = Compressor::new(codec, Level::DEFAULT, 32 << 10) else {
                return false;
            };
            let mut out = [0u8; 16 * TEXT.len()];
            let Some(n) = c.compress(&chunk, &mut out) else {
                return false;
            };
            let mut back = [0u8; 16 * TEXT.len()];
            let decoded = Decompressor::new(codec)
                .decompress(&out[..n], &mut back)
                .is_ok();
            let raw = c.compress(&noise, &mut [0u8; 512]).is_none();
            decoded && back == chunk && n < chunk.len() / 2 && raw
        })
}

/// wim-image's container layer without std: a small uncompressed WIM that wimlib-imagex 1.13
/// captured (`/a` = "hello\n", `/d/b` = `seq 1 300`, a symlink and a hard link; the fuzz seed
/// `wim-image/fuzz/seeds/open/uncompressed`) opened from memory; the XML names the image, the
/// tree walks, a file is read by path with random access, and a damaged copy gives an error.
fn wim_container_check() -> bool {
    use wim_image::Wim;
    static WIM: &[u8] = include_bytes!("../../../wim-image/fuzz/seeds/open/uncompressed");
    let Ok(wim) = Wim::open(WIM) else {
        return false;
    };
    let named = wim.xml().image(1).and_then(|i| i.name()).as_deref() == Some("s");
    let Ok(tree) = wim.image(1) else {
        return false;
    };
    let walked = tree.walk().count() == 6;
    let read = tree
        .lookup("/d/b")
        .and_then(|id| tree.node(id).dentry.data)
        .and_then(|h| wim.blob(&h))
        .is_some_and(|b| {
            // "1\n2\n…9\n10\n": bytes 18..21 are "10\n".
            let mut buf = [0u8; 3];
            wim.reader().read_at(b, 18, &mut buf).is_ok() && &buf == b"10\n" && b.size == 1092
        });
    let mut damaged = alloc::vec::Vec::from(WIM);
    damaged[8] = 0x60;
    read && named && walked && Wim::open(damaged.as_slice()).is_err()
}
