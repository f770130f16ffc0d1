//! The corner-case table of `shared/reference/x86.md` §4 (38 rows), as golden tests.
//!
//! Each row states the expected outcome in terms of this crate's structure-level record; every
//! row is also cross-checked against iced-x86, the oracle the table was probed with.

#[path = "support/iced_diff.rs"]
mod iced_diff;

use x86_decode::{
    DecodeError, Decoder, Encoding, Instruction, InvalidReason, Mode, Prefixes, Register, Segment,
    Vendor,
};

const M16: Mode = Mode::Bits16;
const M32: Mode = Mode::Bits32;
const M64: Mode = Mode::Bits64;
const IP: u64 = 0x1000;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

fn dec_v(mode: Mode, vendor: Vendor, bytes: &str) -> Result<Instruction, DecodeError> {
    let b = hex(bytes);
    let r = Decoder::new(mode).with_vendor(vendor).decode(&b, IP);
    // Cross-check with iced on a full 15-byte window (iced may report a short window holding
    // an invalid opcode as "no more bytes"; we report it invalid as soon as that is certain).
    let mut padded = b.clone();
    padded.resize(15.max(b.len()), 0xCC);
    if let Some(m) = iced_diff::compare(mode, vendor, &padded, IP) {
        assert!(
            iced_diff::allowed(mode, &padded, m).is_some(),
            "iced disagrees on {bytes}: {m:?}"
        );
    }
    r
}

fn ok(mode: Mode, bytes: &str) -> Instruction {
    match dec_v(mode, Vendor::Intel, bytes) {
        Ok(i) => {
            assert_eq!(i.len(), hex(bytes).len(), "length of {bytes}");
            i
        }
        Err(e) => panic!("{bytes}: {e}"),
    }
}

fn invalid(mode: Mode, bytes: &str) -> InvalidReason {
    match dec_v(mode, Vendor::Intel, bytes) {
        Err(DecodeError::Invalid(r)) => r,
        other => panic!("{bytes}: expected invalid, got {other:?}"),
    }
}

fn r64(n: u8) -> Register {
    Register::gpr(8, n)
}

#[test]
fn rows_01_03_length_limit() {
    let p13 = "2E ".repeat(13);
    assert_eq!(
        ok(M64, &format!("{p13} 8B 00")).segment_prefix(),
        Segment::NONE
    );
    let p14 = "2E ".repeat(14);
    assert_eq!(
        invalid(M64, &format!("{p14} 8B 00")),
        InvalidReason::TooLong
    );
    let i = ok(M64, &format!("{} 90", "66 ".repeat(14)));
    assert_eq!(i.len(), 15);
}

#[test]
fn rows_04_06_rex_position_and_priority() {
    let i = ok(M64, "48 66 89 C0");
    assert_eq!(
        (i.rex(), i.operand_size()),
        (0, 2),
        "REX before 66 is ignored"
    );
    let i = ok(M64, "66 48 89 C0");
    assert_eq!((i.rex(), i.operand_size()), (0x48, 8), "REX.W beats 66");
    let i = ok(M64, "48 41 89 C0");
    assert_eq!(
        (i.rex(), i.operand_size()),
        (0x41, 4),
        "only the last REX counts"
    );
}

#[test]
fn rows_07_09_mandatory_prefix_selection() {
    assert_eq!(
        ok(M64, "F2 F3 0F 10 00").mandatory_prefix(),
        2,
        "last of F2/F3 wins: movss"
    );
    assert_eq!(
        ok(M64, "66 F3 0F 6F 00").mandatory_prefix(),
        2,
        "F3 outranks 66: movdqu"
    );
    let i = ok(M64, "F3 89 C0");
    assert!(i.prefixes().contains(Prefixes::REP));
    assert_eq!((i.map().0, i.opcode()), (0, 0x89));
}

#[test]
fn row_10_lock_validity() {
    assert!(ok(M64, "F0 01 00").has_lock());
    assert_eq!(invalid(M64, "F0 01 C0"), InvalidReason::Lock);
    assert_eq!(invalid(M64, "F0 8B 00"), InvalidReason::Lock);
    assert_eq!(invalid(M64, "F0 87 C0"), InvalidReason::Lock);
}

#[test]
fn row_11_amd_alternate_cr8() {
    assert!(matches!(
        dec_v(M32, Vendor::Intel, "F0 0F 20 C0"),
        Err(DecodeError::Invalid(_))
    ));
    let i = dec_v(M32, Vendor::Amd, "F0 0F 20 C0").expect("AMD: mov eax, cr8");
    assert_eq!((i.len(), i.map().0, i.opcode()), (4, 1, 0x20));
}

#[test]
fn rows_12_35_36_segment_overrides() {
    assert_eq!(ok(M64, "26 8B 00").memory_segment(), Segment::DS);
    assert_eq!(ok(M64, "64 8B 00").memory_segment(), Segment::FS);
    assert_eq!(ok(M64, "64 8B 00").segment_prefix(), Segment::FS);
    // Row 35 (iced reports ES/CS/SS/DS prefixes in 64-bit mode; see the allow-list).
    let d = Decoder::new(M64);
    for (b, s) in [
        ("64 2E 8B 00", Segment::FS),
        ("2E 64 8B 00", Segment::FS),
        ("64 65 8B 00", Segment::GS),
    ] {
        assert_eq!(
            d.decode(&hex(b), 0).map(|i| i.memory_segment()),
            Ok(s),
            "{b}"
        );
    }
    assert_eq!(ok(M32, "2E 36 8B 00").memory_segment(), Segment::SS);
    assert_eq!(
        ok(M32, "8B 45 00").memory_segment(),
        Segment::SS,
        "EBP base defaults to SS"
    );
    assert_eq!(
        ok(M64, "41 8B 45 00").memory_segment(),
        Segment::DS,
        "R13 base does not"
    );
}

#[test]
fn rows_13_14_segment_register_moves() {
    invalid(M64, "8E C8");
    invalid(M64, "8C F8");
    let i = ok(M64, "4E 8C 29");
    assert_eq!(
        i.memory_base(),
        r64(1),
        "REX.R ignored for Sreg, REX.B... not set here"
    );
}

#[test]
fn row_15_moffs_width_follows_address_size() {
    assert_eq!(
        ok(M64, "A1 88 77 66 55 44 33 22 11").memory_displacement(),
        0x1122_3344_5566_7788
    );
    assert_eq!(ok(M64, "67 A1 44 33 22 11").displacement_size(), 4);
    assert_eq!(ok(M64, "66 A1 88 77 66 55 44 33 22 11").len(), 10);
}

#[test]
fn rows_16_19_rip_relative_and_absolute() {
    let i = ok(M64, "C7 05 10 00 00 00 01 00 00 00");
    assert_eq!(
        i.ip_relative_target(),
        Some(IP + 10 + 0x10),
        "relative to the end incl. immediate"
    );
    let i = ok(M64, "80 3D F0 FF FF FF 05");
    assert_eq!(i.ip_relative_target(), Some(IP + 7 - 0x10));
    let i = ok(M64, "67 8B 05 00 F0 FF FF");
    assert_eq!(i.memory_base(), Register::EIP);
    assert_eq!(
        i.ip_relative_target(),
        Some((IP + 7).wrapping_sub(0x1000) & 0xFFFF_FFFF)
    );
    let i = ok(M64, "8B 04 25 00 00 00 80");
    assert_eq!(
        (i.memory_base(), i.memory_index()),
        (Register::NONE, Register::NONE)
    );
    assert_eq!(
        i.memory_displacement(),
        0xFFFF_FFFF_8000_0000,
        "sign-extended in 64-bit mode"
    );
    assert!(!i.is_ip_relative());
}

#[test]
fn rows_20_21_sib_special_cases() {
    let i = ok(M64, "42 8B 04 A0");
    assert_eq!(
        (i.memory_base(), i.memory_index(), i.memory_scale()),
        (r64(0), r64(12), 4)
    );
    let i = ok(M64, "8B 04 A0");
    assert_eq!(
        i.memory_index(),
        Register::NONE,
        "index 100b without REX.X means none"
    );
    let i = ok(M64, "4C 8B 24 24");
    assert_eq!(
        (i.memory_base(), i.memory_index(), i.rex()),
        (r64(4), Register::NONE, 0x4C)
    );
    let i = ok(M64, "49 8B 04 24");
    assert_eq!(
        (i.memory_base(), i.memory_index()),
        (r64(12), Register::NONE),
        "r12 base needs a SIB"
    );
    let i = ok(M64, "41 8B 45 08");
    assert_eq!(
        (i.memory_base(), i.displacement_size()),
        (r64(13), 1),
        "r13 needs a disp8"
    );
    let i = ok(M64, "41 8B 04 25 00 00 00 00");
    assert_eq!(
        i.memory_base(),
        Register::NONE,
        "SIB base 101 with mod 00 is disp32 even with REX.B"
    );
}

#[test]
fn row_22_3dnow_suffix_opcode() {
    let i = ok(M64, "0F 0F C1 9E");
    assert_eq!((i.encoding(), i.opcode()), (Encoding::Amd3dNow, 0x9E));
    invalid(M64, "0F 0F C1 00");
}

#[test]
fn rows_23_25_vex_evex_xop_recognition() {
    assert_eq!(invalid(M64, "66 C5 F8 77"), InvalidReason::PrefixBeforeVex);
    assert_eq!(invalid(M64, "48 C5 F8 77"), InvalidReason::PrefixBeforeVex);
    let i = ok(M32, "C5 00");
    assert_eq!((i.encoding(), i.opcode()), (Encoding::Legacy, 0xC5));
    let i = ok(M32, "62 00");
    assert_eq!((i.encoding(), i.opcode()), (Encoding::Legacy, 0x62));
    assert_eq!(ok(M32, "C5 F8 77").encoding(), Encoding::Vex);
    let i = ok(M64, "8F C0");
    assert_eq!((i.encoding(), i.opcode()), (Encoding::Legacy, 0x8F));
    let i = ok(M64, "8F E9 78 12 C0");
    assert_eq!(
        (i.encoding(), i.map().0, i.opcode()),
        (Encoding::Xop, 9, 0x12)
    );
}

/// The AMX tile dot products and complex multiplies name three tile registers, which must all
/// differ (found by the differential fuzzer against iced-x86).
#[test]
fn amx_tile_operands_must_differ() {
    // tdpbf16ps / tdpbssd / tcmmrlfp16ps tmm7, tmm6, tmm0 (vvvv 0): valid.
    for (p1, op) in [("7A", "5C"), ("7B", "5E"), ("78", "6C")] {
        let good = format!("C4 E2 {p1} {op} FE");
        assert_eq!(ok(M64, &good).modrm(), Some(0xFE), "{good}");
    }
    for bad in [
        "C4 E2 42 5C FE", // vvvv 7 = destination
        "C4 E2 7B 5E F6", // destination = rm (tmm6)
        "C4 E2 30 6C FE", // vvvv 6 = rm
        "C4 E2 40 6C FE", // vvvv 7 = destination (the fuzzer's find)
        "C4 A2 40 5E C0", // destination = rm (tmm0): VEX.X does not extend rm
    ] {
        assert_eq!(invalid(M64, bad), InvalidReason::Undefined, "{bad}");
    }
}

/// EVEX.V' extends a VSIB index only in 64-bit mode; elsewhere a clear (inverted: set) V' is
/// invalid, as it is for `vvvv` (found by the differential fuzzer against iced-x86).
#[test]
fn evex_vsib_vprime_outside_64_bit_mode() {
    // vpgatherdd zmm1{k2}, [esp+zmm2*4+disp32] and vgatherpf0qps [esp+zmm2*4+disp32]{k2}
    for op in ["90", "C7"] {
        let good = format!("62 F2 7D 4A {op} 8C 94 8C 8C 3A 8C");
        let bad = format!("62 F2 7D 42 {op} 8C 94 8C 8C 3A 8C");
        assert_eq!(ok(M32, &good).memory_index().number(), 2, "{good}");
        assert_eq!(invalid(M32, &bad), InvalidReason::Undefined, "{bad}");
        assert_eq!(invalid(M16, &bad), InvalidReason::Undefined, "{bad}");
        assert_eq!(ok(M64, &bad).memory_index().number(), 18, "{bad}");
    }
}

#[test]
fn rows_26_27_nop_and_movsxd() {
    let i = ok(M64, "41 90");
    assert_eq!((i.rex(), i.opcode()), (0x41, 0x90));
    assert_eq!(ok(M64, "F3 90").mandatory_prefix(), 2);
    assert_eq!(ok(M64, "63 C0").opcode(), 0x63);
}

#[test]
fn row_28_vendor_dependent_branch_length() {
    let b = hex("66 E8 10 00 00 00");
    let i = dec_v(M64, Vendor::Intel, "66 E8 10 00 00 00").expect("intel");
    assert_eq!((i.len(), i.near_branch_target()), (6, Some(IP + 6 + 0x10)));
    let a = dec_v(M64, Vendor::Amd, "66 E8 10 00 00 00").expect("amd");
    assert_eq!(
        (a.len(), a.near_branch_target()),
        (4, Some((IP + 4 + 0x10) & 0xFFFF))
    );
    assert_eq!(b.len(), 6);
}

#[test]
fn rows_29_32_misc_validity() {
    let i = ok(M64, "0F 20 00");
    assert!(!i.has_memory(), "MOV CR ignores ModRM.mod");
    invalid(M64, "44 0F 20 C8"); // CR9 does not exist
    assert_eq!(ok(M64, "44 0F 20 C0").len(), 4); // CR8 does
    invalid(M64, "48 0F C7 C8");
    assert!(ok(M64, "48 0F C7 08").has_memory());
    invalid(M64, "D6");
    ok(M32, "D6");
    invalid(M64, "D5 08 89 C0"); // APX REX2 not decoded (policy: follow iced)
    ok(M32, "D5 08");
}

#[test]
fn rows_33_34_vector_moves() {
    let i = ok(M64, "62 F1 FE 48 6F 00");
    assert_eq!(
        (i.encoding(), i.vector_length(), i.opcode()),
        (Encoding::Evex, 2, 0x6F)
    );
    assert_eq!(i.memory_base(), r64(0));
    let i = ok(M64, "62 F1 FE 4A 6F 40 01");
    assert_eq!(
        (i.op_mask(), i.displacement_size(), i.memory_displacement()),
        (2, 1, 64),
        "disp8*N with N = 64"
    );
    let i = ok(M64, "C5 FE 6F 00");
    assert_eq!((i.encoding(), i.vector_length()), (Encoding::Vex, 1));
    invalid(M64, "C5 F6 6F 00"); // vvvv must be 1111 for a move
}

#[test]
fn rows_37_38_repeated_prefixes() {
    assert!(ok(M64, "F3 F2 A6").prefixes().contains(Prefixes::REPNE));
    assert!(ok(M64, "F2 F3 A6").prefixes().contains(Prefixes::REP));
    let i = ok(M64, "F0 66 F0 83 00 01");
    assert!(i.has_lock());
    assert_eq!(
        (i.operand_size(), i.immediate(), i.immediate_size()),
        (2, 1, 1)
    );
}

#[test]
fn sixteen_bit_addressing() {
    let i = ok(M16, "8B 42 FE");
    assert_eq!(i.memory_base(), Register::gpr(2, 5)); // bp
    assert_eq!(i.memory_index(), Register::gpr(2, 6)); // si
    assert_eq!(i.memory_segment(), Segment::SS);
    assert_eq!(
        i.memory_displacement(),
        0xFFFE,
        "16-bit displacement wraps at 64 KiB"
    );
    assert_eq!(ok(M16, "8B 06 34 12").memory_base(), Register::NONE);
    assert_eq!(
        ok(M32, "67 8B 00").memory_index(),
        Register::gpr(2, 6),
        "67 in 32-bit: [bx+si]"
    );
    assert_eq!(
        ok(M16, "67 8B 04 24").memory_base(),
        Register::gpr(4, 4),
        "67 in 16-bit: SIB"
    );
}

#[test]
fn truncation_is_not_invalid() {
    let d = Decoder::new(M64);
    for cut in 0..10 {
        let b = hex("C7 05 10 00 00 00 01 00 00 00");
        assert_eq!(
            d.decode(&b[..cut], 0),
            Err(DecodeError::NeedMoreBytes { have: cut })
        );
    }
    assert_eq!(
        d.decode(&hex("62 F1"), 0),
        Err(DecodeError::NeedMoreBytes { have: 2 })
    );
    assert_eq!(
        Decoder::new(M32).decode(&hex("C4"), 0),
        Err(DecodeError::NeedMoreBytes { have: 1 })
    );
}

#[test]
fn semantic_examples() {
    use x86_decode::{rflags, Mnemonic, OperandKind};
    let i = ok(M64, "F0 83 44 88 F0 01");
    assert_eq!(i.mnemonic(), Some(Mnemonic::Add));
    assert_eq!(i.memory_size(), Some(4));
    let f = i.flags().expect("add has fixed flag effects");
    assert_eq!((f.read, f.written, f.undefined), (0, rflags::STATUS, 0));
    let ops = i.operands().expect("add operands");
    let ops = ops.as_slice();
    assert_eq!(ops.len(), 2);
    assert_eq!((ops[0].kind, ops[0].size), (OperandKind::Memory, 4));
    assert_eq!(
        (ops[1].kind, ops[1].value, ops[1].sign_extended),
        (OperandKind::Immediate, 1, true)
    );
    // High-byte registers exist only without REX.
    let ops = ok(M64, "88 E0").operands().expect("mov");
    assert_eq!(ops.as_slice()[0].register, Register::gpr(1, 0));
    assert_eq!(ops.as_slice()[1].register, Register::high_byte(4), "ah");
    let ops = ok(M64, "40 88 E0").operands().expect("mov");
    assert_eq!(ops.as_slice()[1].register, Register::gpr(1, 4), "spl");
    // x87 and vector memory forms: mnemonic and access size; EVEX disp8*N.
    assert_eq!(ok(M64, "DD 00").mnemonic(), Some(Mnemonic::Fld));
    assert_eq!(ok(M64, "DB 28").memory_size(), Some(10));
    let i = ok(M64, "62 F1 FE 48 6F 40 01");
    assert_eq!(
        (i.mnemonic(), i.memory_size()),
        (Some(Mnemonic::Vmovdqu64), Some(64))
    );
    assert_eq!(i.memory_displacement(), 64, "disp8 * N");
    assert!(i.prefixes().contains(Prefixes::DISP8_SCALED));
    let i = ok(M64, "62 F1 7E 08 10 48 FF");
    assert_eq!(
        (i.mnemonic(), i.memory_displacement()),
        (Some(Mnemonic::Vmovss), (-4i64) as u64)
    );
    // Outside the covered set: None, not a guess.
    assert_eq!(ok(M64, "C4 E2 71 00 C2").mnemonic(), None);
    // TPAUSE/UMWAIT take a 64-bit register with REX.W, as in iced-x86 (a fuzzer find).
    for (hex, size) in [
        ("66 0F AE F1", 4),
        ("66 48 0F AE F1", 8),
        ("F2 48 0F AE F1", 8),
    ] {
        let ops = ok(M64, hex).operands().expect("tpause/umwait operands");
        assert_eq!(ops.as_slice()[0].register, Register::gpr(size, 1), "{hex}");
    }
}

#[test]
fn semantic_string_system_and_masked_moves() {
    use x86_decode::{rflags, Mnemonic, OperandKind, Segment};
    // String instruction: implicit operands with their segment rules, REP, address size.
    let i = ok(M64, "F3 67 2E A5");
    let ops = i.operands().expect("movsd operands");
    let ops = ops.as_slice();
    assert_eq!(i.mnemonic(), Some(Mnemonic::Movsd));
    assert!(i.prefixes().contains(Prefixes::REP));
    assert_eq!(
        (ops[0].kind, ops[0].register, ops[0].segment, ops[0].size),
        (
            OperandKind::StringDestination,
            Register::gpr(4, 7),
            Segment::ES,
            4
        )
    );
    // 64-bit mode: the CS prefix is ignored, the source stays DS.
    assert_eq!(
        (ops[1].kind, ops[1].register, ops[1].segment),
        (OperandKind::StringSource, Register::gpr(4, 6), Segment::DS)
    );
    let f = i.flags().expect("movs");
    assert_eq!((f.read, f.written), (rflags::DF, 0));
    let i = ok(M32, "64 A6");
    assert_eq!(
        i.operands().expect("cmpsb").as_slice()[0].segment,
        Segment::FS
    );
    // System instructions.
    let ops = ok(M64, "0F 22 D8").operands().expect("mov cr3, rax");
    assert_eq!(ops.as_slice()[0].register, Register::control(3));
    assert_eq!(ok(M64, "0F 01 10").memory_size(), Some(10), "lgdt m16&64");
    assert_eq!(ok(M32, "0F 01 10").memory_size(), Some(6), "lgdt m16&32");
    let i = ok(M64, "9D");
    assert_eq!(i.flags().map(|f| f.written & rflags::IF), Some(rflags::IF));
    assert_eq!(ok(M64, "0F 01 F8").mnemonic(), Some(Mnemonic::Swapgs));
    // EVEX masked move with disp8*N; VEX masked move names its mask register.
    let i = ok(M64, "62 F1 7E 4A 7F 48 02");
    assert_eq!((i.mnemonic(), i.op_mask()), (Some(Mnemonic::Vmovdqu32), 2));
    assert_eq!((i.memory_size(), i.memory_displacement()), (Some(64), 128));
    let ops = ok(M64, "C4 E2 75 2E 00")
        .operands()
        .expect("vmaskmovps store");
    assert_eq!(ops.as_slice()[1].register, Register::vector(32, 1));
    // MASKMOVDQU: the destination is the implicit ds:[rDI].
    let ops = ok(M64, "66 0F F7 C1").operands().expect("maskmovdqu");
    assert_eq!(ops.as_slice()[0].kind, OperandKind::ImplicitDestination);
}

/// Found by the large differential run: the 3DNow! suffix `A6` (PFRCPIT1) after an `F3` prefix
/// must not be mistaken for VIA `MONTMUL` (`F3 0F A6 C0`).
#[test]
fn amd3dnow_suffix_is_not_montmul() {
    let i = ok(M64, "F3 0F 0F C6 A6");
    assert_eq!((i.encoding(), i.opcode()), (Encoding::Amd3dNow, 0xA6));
    invalid(M64, "F3 0F A6 C0"); // MONTMUL needs 32-bit addressing
    ok(M64, "67 F3 0F A6 C0");
}
