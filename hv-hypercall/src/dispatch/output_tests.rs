//! How the dispatcher hands output back: page-sized blocks, the register-pair budget of XMM
//! fast output, zeroing what a simple call's handler left unwritten, and writing back exactly
//! the elements a rep call completed (bytes in memory, registers in the fast case).

use core::cell::RefCell;

use super::*;
use crate::defs::MiscFeatures;
use crate::memory::observed::{Access, Observed};

const FULL: DispatchConfig = DispatchConfig {
    xmm_fast_input: true,
    xmm_fast_output: true,
    rep_continuation: RepContinuation::ReturnToGuest,
};

/// Registers that record which XMM registers the dispatcher writes.
#[derive(Default)]
struct Watched {
    regs: X64Registers,
    xmm_writes: Vec<usize>,
}

impl HypercallRegisters for Watched {
    fn gpr(&mut self, reg: Gpr) -> u64 {
        self.regs.gpr(reg)
    }
    fn set_gpr(&mut self, reg: Gpr, value: u64) {
        self.regs.set_gpr(reg, value)
    }
    fn xmm(&mut self, index: usize) -> u128 {
        self.regs.xmm(index)
    }
    fn set_xmm(&mut self, index: usize, value: u128) {
        self.xmm_writes.push(index);
        self.regs.set_xmm(index, value)
    }
}

fn pair(lo: u64, hi: u64) -> u128 {
    u128::from(lo) | u128::from(hi) << 64
}

#[test]
fn config_follows_the_advertised_features() {
    let misc = MiscFeatures::new();
    for (input, output) in [(false, false), (true, false), (false, true), (true, true)] {
        let features = misc
            .with_xmm_fast_hypercall_input(input)
            .with_xmm_fast_hypercall_output(output);
        let config = DispatchConfig::from_features(features);
        assert_eq!(
            config,
            DispatchConfig {
                xmm_fast_input: input,
                xmm_fast_output: output,
                rep_continuation: RepContinuation::ReturnToGuest,
            }
        );
        let d = Dispatcher::new(config);
        assert_eq!(d.config(), config);
        let shown = format!("{d:?}");
        assert!(shown.starts_with("Dispatcher"), "{shown}");
        assert!(
            shown.contains(&format!("xmm_fast_output: {output}")),
            "{shown}"
        );
    }
}

#[test]
fn output_block_of_exactly_one_page() {
    // 256 elements × 16 bytes of output fill the page at OUT; the input is 16 + 8 × 256 bytes.
    let mem = memory();
    let values: Vec<u64> = (1..=256).collect();
    rep_setup(&mem, &values);
    let mut h = TestHandler::default();
    let mut regs = x64(rep_control(256, 0), IN, OUT);
    let r = run(DispatchConfig::default(), &mut regs, &mem, &mut h)
        .result()
        .unwrap();
    assert_eq!(r.call_status(), HvStatus::SUCCESS);
    assert_eq!(r.reps_completed(), 256);
    assert_eq!(rep_output(&mem, 0), (3, 1));
    assert_eq!(rep_output(&mem, 255), (768, 256));
    // One more element and the output block spans two pages.
    let mut regs = x64(rep_control(257, 0), IN, OUT);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::INVALID_ALIGNMENT
    );
    assert_eq!(h.generic.len(), 1);
}

#[test]
fn fast_output_shares_seven_register_pairs_with_the_input() {
    // VAR_CODE: 8 fixed bytes + 8 × k variable-header bytes in, 8 bytes out.
    let mem = memory();
    let control = |k: u16| {
        HypercallInput::simple(VAR_CODE)
            .with_fast(true)
            .with_variable_header_size(k)
            .0
    };
    let fill = |regs: &mut X64Registers| {
        // Qword n of the input is n + 1.
        regs.rdx = 1;
        regs.r8 = 2;
        for (i, x) in regs.xmm.iter_mut().enumerate() {
            let n = 2 * i as u64 + 2;
            *x = pair(n + 1, n + 2);
        }
    };
    // k = 11: 96 bytes in (RDX/R8, XMM0–XMM4) and the output in XMM5, the last pair.
    let mut h = TestHandler::default();
    let mut regs = x64(control(11), 0, 0);
    fill(&mut regs);
    assert_eq!(
        status_of(run(FULL, &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    // The output is the low half; the high half is not output and keeps its value.
    assert_eq!(regs.xmm[5], pair((1..=12).sum(), 14));
    // k = 12: 104 bytes in take all seven pairs, leaving none for the output.
    let mut regs = x64(control(12), 0, 0);
    fill(&mut regs);
    let before = regs.xmm;
    assert_eq!(
        status_of(run(FULL, &mut regs, &mem, &mut h)),
        HvStatus::INVALID_HYPERCALL_INPUT
    );
    assert_eq!(regs.xmm, before);
    assert_eq!(
        h.generic.len(),
        1,
        "the refused call never reached the handler"
    );
}

#[test]
fn simple_call_output_the_handler_left_is_zero() {
    // Memory: the guest's output block held 0xff bytes.
    let mem = memory();
    mem.write(IN, &5u64.to_le_bytes()).unwrap();
    mem.write(IN + 8, &6u64.to_le_bytes()).unwrap();
    mem.write(OUT, &[0xff; 16]).unwrap();
    let mut h = TestHandler::default();
    let mut regs = x64(HypercallInput::simple(SHORT_CODE).0, IN, OUT);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    assert_eq!(mem.read_u64(OUT).unwrap(), 11);
    assert_eq!(mem.read_u64(OUT + 8).unwrap(), 0);
    // Fast: the output register held all ones.
    let mut regs = x64(HypercallInput::simple(SHORT_CODE).with_fast(true).0, 5, 6);
    regs.xmm[0] = u128::MAX;
    assert_eq!(
        status_of(run(FULL, &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    assert_eq!(regs.xmm[0], 11);
}

#[test]
fn rep_write_back_covers_only_completed_elements() {
    let ram = memory();
    let writes = RefCell::new(Vec::new());
    let mem = Observed {
        inner: &ram,
        hook: |_: &AtomicMemory, a| writes.borrow_mut().push(a),
    };
    let take = || writes.take();
    let write = |gpa, len| [Access::Write { gpa, len }];
    rep_setup(&ram, &[10, 20, 30, 40, 50]);
    let mut h = TestHandler {
        budget: Some(2),
        ..Default::default()
    };
    let d = &mut Dispatcher::new(DispatchConfig::default());
    // Elements 2 and 3 of 16 bytes each.
    let mut regs = x64(rep_control(5, 2), IN, OUT);
    let r = d.dispatch(CallingConvention::X64, &mut regs, &mem, &mut h);
    assert_eq!(r.result().unwrap().reps_completed(), 4);
    assert_eq!(take(), write(OUT + 32, 32));
    assert_eq!(rep_output(&ram, 1), (0, 0));
    assert_eq!(rep_output(&ram, 3), (120, 40));
    // Elements 1 to 3 of 8 bytes each.
    let control = HypercallInput::rep(HALF_CODE, 5).with_rep_start(1).0;
    h.budget = Some(3);
    let mut regs = x64(control, IN, OUT);
    let r = d.dispatch(CallingConvention::X64, &mut regs, &mem, &mut h);
    assert_eq!(r.result().unwrap().reps_completed(), 4);
    assert_eq!(take(), write(OUT + 8, 24));
    // A call that completes nothing writes nothing.
    h.budget = Some(0);
    let mut regs = x64(rep_control(5, 4), IN, OUT);
    let r = d.dispatch(CallingConvention::X64, &mut regs, &mem, &mut h);
    assert_eq!(r.result().unwrap().reps_completed(), 4);
    assert_eq!(take(), []);
}

#[test]
fn fast_rep_output_keeps_the_other_half_of_a_register() {
    // HALF_CODE, three elements: 16 + 3 × 8 = 40 bytes in (RDX/R8, XMM0, XMM1) and 3 × 8 = 24
    // bytes out (XMM2 and the low half of XMM3). One element per call: each call must change
    // only its own half and write only the register that holds it.
    let mem = memory();
    let mut h = TestHandler {
        budget: Some(1),
        ..Default::default()
    };
    let mut w = Watched::default();
    w.regs.rdx = 3;
    w.regs.xmm[0] = pair(5, 7);
    w.regs.xmm[1] = pair(11, 0);
    let (s0, s1, s2, s3) = (0xa0, 0xa1, 0xa2, 0xa3);
    w.regs.xmm[2] = pair(s0, s1);
    w.regs.xmm[3] = pair(s2, s3);
    let expect = [
        ([15, s1, s2, s3], 2),
        ([15, 21, s2, s3], 2),
        ([15, 21, 33, s3], 3),
    ];
    for (start, (halves, reg)) in expect.into_iter().enumerate() {
        w.regs.rcx = HypercallInput::rep(HALF_CODE, 3)
            .with_rep_start(start as u16)
            .with_fast(true)
            .0;
        w.xmm_writes.clear();
        let r = Dispatcher::new(FULL)
            .dispatch(CallingConvention::X64, &mut w, &mem, &mut h)
            .result()
            .unwrap();
        assert_eq!(r.reps_completed(), start as u16 + 1);
        assert_eq!(
            [w.regs.xmm[2], w.regs.xmm[3]],
            [pair(halves[0], halves[1]), pair(halves[2], halves[3])],
            "after element {start}"
        );
        assert_eq!(w.xmm_writes, [reg], "after element {start}");
    }
    assert_eq!(
        w.regs.xmm[..2],
        [pair(5, 7), pair(11, 0)],
        "input untouched"
    );
}

#[test]
fn borrowed_registers_forward_every_access() {
    // WIDE_CODE, fast: reads RCX, RDX, R8, XMM0 and XMM1; writes XMM2 and RAX.
    let mem = memory();
    let mut h = TestHandler::default();
    let mut regs = x64(HypercallInput::simple(WIDE_CODE).with_fast(true).0, 1, 2);
    regs.xmm[0] = pair(3, 4);
    regs.xmm[1] = pair(5, 6);
    let mut borrowed = &mut regs;
    let out = Dispatcher::new(FULL).dispatch(CallingConvention::X64, &mut borrowed, &mem, &mut h);
    assert_eq!(status_of(out), HvStatus::SUCCESS);
    assert_eq!(regs.rax, 0);
    // Sum and xor of 1..=6.
    assert_eq!(regs.xmm[2], pair(21, 7));
}
