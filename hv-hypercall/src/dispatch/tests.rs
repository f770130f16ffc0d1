//! Table-driven tests of the dispatcher: each calling convention and each validation rule.

use std::vec::Vec;

use zerocopy::IntoBytes;

use super::*;
use crate::defs::{HvMessageType, PostMessageInput, SignalEventInput};
use crate::memory::AtomicMemory;

/// A rep call for the tests: header 16 bytes (a u64 multiplier + pad), elements 8 bytes in,
/// 16 bytes out (value × multiplier, value). It processes at most `budget` elements per call
/// and fails with `INVALID_PARAMETER` on an element equal to `u64::MAX`.
const REP_CODE: HypercallCode = HypercallCode::GET_VP_REGISTERS;
/// A simple call with a 48-byte input and 16-byte output (sum, xor of the six input qwords).
const WIDE_CODE: HypercallCode = HypercallCode::TRANSLATE_VIRTUAL_ADDRESS;
/// A simple call with a variable header: 8 bytes fixed, output 8 = sum of variable qwords.
const VAR_CODE: HypercallCode = HypercallCode::RETARGET_DEVICE_INTERRUPT;
/// A rep call with 8-byte output elements: header 16 bytes (multiplier + pad), elements 8 bytes
/// in, 8 bytes out (value × multiplier). Same budget as `REP_CODE`.
const HALF_CODE: HypercallCode = HypercallCode::SET_VP_REGISTERS;
/// A simple call with 16 bytes in and 16 bytes out whose handler writes only the first 8 output
/// bytes (the sum of the two input qwords): the dispatcher must zero the rest.
const SHORT_CODE: HypercallCode = HypercallCode::FLUSH_VIRTUAL_ADDRESS_SPACE;

#[derive(Default)]
struct TestHandler {
    posts: Vec<(u32, u32, Vec<u8>)>,
    signals: Vec<(u32, u16)>,
    generic: Vec<(HypercallInput, usize)>,
    status: Option<HvStatus>,
    budget: Option<u16>,
}

impl HypercallHandler for TestHandler {
    fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
        self.posts
            .push((r.connection_id, r.message_type.0, r.payload.to_vec()));
        self.status.unwrap_or(HvStatus::SUCCESS)
    }

    fn signal_event(&mut self, r: SignalEventRequest) -> HvStatus {
        self.signals.push((r.connection_id, r.flag_number));
        self.status.unwrap_or(HvStatus::SUCCESS)
    }

    fn shape(&self, code: HypercallCode) -> Option<CallShape> {
        match code {
            REP_CODE => Some(CallShape::Rep {
                header_size: 16,
                input_element_size: 8,
                output_element_size: 16,
                variable_header: false,
            }),
            WIDE_CODE => Some(CallShape::Simple {
                input_size: 48,
                output_size: 16,
                variable_header: false,
            }),
            VAR_CODE => Some(CallShape::Simple {
                input_size: 8,
                output_size: 8,
                variable_header: true,
            }),
            HALF_CODE => Some(CallShape::Rep {
                header_size: 16,
                input_element_size: 8,
                output_element_size: 8,
                variable_header: false,
            }),
            SHORT_CODE => Some(CallShape::Simple {
                input_size: 16,
                output_size: 16,
                variable_header: false,
            }),
            _ => None,
        }
    }

    fn call(&mut self, call: GenericCall<'_>, output: &mut [u8]) -> RepResult {
        self.generic.push((call.input, call.elements.len()));
        let qword =
            |b: &[u8], i: usize| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap());
        match call.code() {
            REP_CODE => {
                let mul = qword(call.header, 0);
                let n = call.elements.len() / 8;
                let budget = usize::from(self.budget.unwrap_or(u16::MAX)).min(n);
                for i in 0..budget {
                    let v = qword(call.elements, i);
                    if v == u64::MAX {
                        return RepResult {
                            status: HvStatus::INVALID_PARAMETER,
                            completed: i as u16,
                        };
                    }
                    output[16 * i..16 * i + 8]
                        .copy_from_slice(&(v.wrapping_mul(mul)).to_le_bytes());
                    output[16 * i + 8..16 * i + 16].copy_from_slice(&v.to_le_bytes());
                }
                RepResult {
                    status: HvStatus::SUCCESS,
                    completed: budget as u16,
                }
            }
            WIDE_CODE => {
                let q: Vec<u64> = (0..6).map(|i| qword(call.header, i)).collect();
                let sum = q.iter().fold(0u64, |a, b| a.wrapping_add(*b));
                let xor = q.iter().fold(0u64, |a, b| a ^ b);
                output[..8].copy_from_slice(&sum.to_le_bytes());
                output[8..].copy_from_slice(&xor.to_le_bytes());
                RepResult::status(self.status.unwrap_or(HvStatus::SUCCESS))
            }
            HALF_CODE => {
                let mul = qword(call.header, 0);
                let n = call.elements.len() / 8;
                let budget = usize::from(self.budget.unwrap_or(u16::MAX)).min(n);
                for i in 0..budget {
                    let v = qword(call.elements, i).wrapping_mul(mul);
                    output[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
                }
                RepResult {
                    status: HvStatus::SUCCESS,
                    completed: budget as u16,
                }
            }
            SHORT_CODE => {
                let sum = qword(call.header, 0).wrapping_add(qword(call.header, 1));
                output[..8].copy_from_slice(&sum.to_le_bytes());
                RepResult::status(HvStatus::SUCCESS)
            }
            VAR_CODE => {
                let n = call.variable_header.len() / 8;
                let sum = (0..n).fold(qword(call.header, 0), |a, i| {
                    a + qword(call.variable_header, i)
                });
                output.copy_from_slice(&sum.to_le_bytes());
                RepResult::status(HvStatus::SUCCESS)
            }
            _ => RepResult::status(HvStatus::INVALID_HYPERCALL_CODE),
        }
    }
}

const IN: u64 = 0x1000;
const OUT: u64 = 0x2000;

fn memory() -> AtomicMemory {
    AtomicMemory::new(0x4000)
}

fn post_block(conn: u32, ty: u32, payload: &[u8]) -> PostMessageInput {
    PostMessageInput::new(conn, ty, payload).unwrap()
}

fn x64(control: u64, rdx: u64, r8: u64) -> X64Registers {
    X64Registers {
        rcx: control,
        rdx,
        r8,
        rax: 0xdead,
        ..Default::default()
    }
}

fn run(
    config: DispatchConfig,
    regs: &mut X64Registers,
    mem: &AtomicMemory,
    h: &mut TestHandler,
) -> DispatchOutcome {
    Dispatcher::new(config).dispatch(CallingConvention::X64, regs, mem, h)
}

fn status_of(outcome: DispatchOutcome) -> HvStatus {
    outcome.result().expect("completed").call_status()
}

#[test]
fn x64_slow_post_message() {
    let mem = memory();
    mem.write(IN, post_block(7, 1, b"hello").as_bytes())
        .unwrap();
    let mut regs = x64(0x5c, IN, 0x1234_5677);
    let mut h = TestHandler::default();
    let out = run(DispatchConfig::default(), &mut regs, &mem, &mut h);
    assert_eq!(out, DispatchOutcome::Completed(HypercallOutput(0)));
    assert_eq!(regs.rax, 0);
    assert_eq!(h.posts, [(7, 1, b"hello".to_vec())]);
    // Only RAX changes.
    assert_eq!((regs.rcx, regs.rdx, regs.r8), (0x5c, IN, 0x1234_5677));
}

#[test]
fn x86_slow_post_message_uses_register_pairs() {
    let mem = memory();
    mem.write(IN, post_block(9, 0x7fff_ffff, &[1; 240]).as_bytes())
        .unwrap();
    let mut regs = X64Registers {
        // EDX:EAX = input value; upper halves hold junk that must be ignored.
        rdx: 0xffff_ffff_0000_0000,
        rax: 0xffff_ffff_0000_005c,
        rbx: 0xaaaa_aaaa_0000_0000,
        rcx: 0xbbbb_bbbb_0000_1000,
        ..Default::default()
    };
    let mut h = TestHandler::default();
    let out = Dispatcher::new(DispatchConfig::default()).dispatch(
        CallingConvention::X86,
        &mut regs,
        &mem,
        &mut h,
    );
    assert_eq!(status_of(out), HvStatus::SUCCESS);
    assert_eq!((regs.rdx, regs.rax), (0, 0));
    assert_eq!(h.posts.len(), 1);
    assert_eq!(h.posts[0].1, 0x7fff_ffff);
    assert_eq!(h.posts[0].2.len(), 240);

    // A failure lands in EDX:EAX as well.
    let mut regs = X64Registers {
        rax: 0x0001,
        ..Default::default()
    };
    let out = Dispatcher::new(DispatchConfig::default()).dispatch(
        CallingConvention::X86,
        &mut regs,
        &mem,
        &mut h,
    );
    assert_eq!(status_of(out), HvStatus::INVALID_HYPERCALL_CODE);
    assert_eq!((regs.rdx, regs.rax), (0, 2));
}

#[test]
fn fast_signal_event_in_both_conventions() {
    let mem = memory();
    let mut h = TestHandler::default();
    let input = SignalEventInput::new(0x1234, 77).to_u64();
    let mut regs = x64(0x1_005d, input, 0);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    let mut regs = X64Registers {
        rax: 0x1_005d,
        rbx: input >> 32,
        rcx: input & 0xffff_ffff,
        ..Default::default()
    };
    let out = Dispatcher::new(DispatchConfig::default()).dispatch(
        CallingConvention::X86,
        &mut regs,
        &mem,
        &mut h,
    );
    assert_eq!(status_of(out), HvStatus::SUCCESS);
    assert_eq!(h.signals, [(0x1234, 77), (0x1234, 77)]);
    // Memory-based SignalEvent works too.
    mem.write(IN, SignalEventInput::new(5, 2047).as_bytes())
        .unwrap();
    let mut regs = x64(0x5d, IN, 0);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    assert_eq!(h.signals[2], (5, 2047));
}

/// One validation rule: registers, memory contents and the expected status.
struct Case {
    name: &'static str,
    control: u64,
    rdx: u64,
    r8: u64,
    post: Option<(u64, PostMessageInput)>,
    expect: HvStatus,
    handler_called: bool,
}

fn case(name: &'static str, control: u64, rdx: u64, expect: HvStatus) -> Case {
    Case {
        name,
        control,
        rdx,
        r8: 0,
        post: None,
        expect,
        handler_called: false,
    }
}

#[test]
fn table_of_validation_rules() {
    let ok_post = post_block(1, 1, b"x");
    let mut raw_reserved = ok_post;
    raw_reserved.reserved = 1.into();
    let mut zero_type = ok_post;
    zero_type.message_type = 0.into();
    let mut hv_type = ok_post;
    hv_type.message_type = 0x8000_0000.into();
    let mut big = ok_post;
    big.payload_size = 241.into();
    let sig = |conn: u32, flag: u16, rsvd: u16| {
        SignalEventInput::new(conn, flag).to_u64() | u64::from(rsvd) << 48
    };
    use HvStatus as S;
    let cases = [
        case("unknown code", 0x0001, 0, S::INVALID_HYPERCALL_CODE),
        case("unknown code 0xffff", 0xffff, 0, S::INVALID_HYPERCALL_CODE),
        case(
            "unknown extended code",
            0x8001,
            0,
            S::INVALID_HYPERCALL_CODE,
        ),
        case(
            "unknown code wins over reserved bits",
            0xffff | 1 << 63,
            0,
            S::INVALID_HYPERCALL_CODE,
        ),
        case(
            "reserved bit 27",
            0x1_005d | 1 << 27,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "reserved bit 30",
            0x1_005d | 1 << 30,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "reserved bit 44",
            0x1_005d | 1 << 44,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "reserved bit 47",
            0x1_005d | 1 << 47,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "reserved bit 60",
            0x1_005d | 1 << 60,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "reserved bit 63",
            0x1_005d | 1 << 63,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "rep count on a simple call",
            0x1_005d | 1 << 32,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "rep start on a simple call",
            0x1_005d | 1 << 48,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        case(
            "variable header on a fixed call",
            0x1_005d | 1 << 17,
            sig(1, 0, 0),
            S::INVALID_HYPERCALL_INPUT,
        ),
        Case {
            handler_called: true,
            ..case(
                "nested bit is accepted",
                0x1_005d | 1 << 31,
                sig(1, 0, 0),
                S::SUCCESS,
            )
        },
        case(
            "signal reserved field",
            0x1_005d,
            sig(1, 0, 1),
            S::INVALID_PARAMETER,
        ),
        case(
            "signal flag 2048",
            0x1_005d,
            sig(1, 2048, 0),
            S::INVALID_PARAMETER,
        ),
        case(
            "signal flag 65535",
            0x1_005d,
            sig(1, 0xffff, 0),
            S::INVALID_PARAMETER,
        ),
        Case {
            handler_called: true,
            ..case("signal flag 2047", 0x1_005d, sig(1, 2047, 0), S::SUCCESS)
        },
        case(
            "post message fast (256 bytes never fit)",
            0x1_005c,
            0,
            S::INVALID_HYPERCALL_INPUT,
        ),
        case("slow input unaligned", 0x5c, IN + 4, S::INVALID_ALIGNMENT),
        case(
            "slow input crosses a page",
            0x5c,
            IN + 0xf08,
            S::INVALID_ALIGNMENT,
        ),
        case(
            "slow input outside memory",
            0x5c,
            0x10_0000,
            S::INVALID_ALIGNMENT,
        ),
        case(
            "slow input at the top of the address space",
            0x5c,
            u64::MAX - 0xff,
            S::INVALID_ALIGNMENT,
        ),
        case("slow signal unaligned", 0x5d, IN + 1, S::INVALID_ALIGNMENT),
        Case {
            post: Some((IN, ok_post)),
            handler_called: true,
            ..case("post message ok", 0x5c, IN, S::SUCCESS)
        },
        Case {
            post: Some((IN + 0xf00, ok_post)),
            handler_called: true,
            ..case(
                "post message at the end of a page",
                0x5c,
                IN + 0xf00,
                S::SUCCESS,
            )
        },
        Case {
            post: Some((IN, ok_post)),
            r8: 3,
            handler_called: true,
            ..case("unused output gpa is ignored", 0x5c, IN, S::SUCCESS)
        },
        Case {
            post: Some((IN, raw_reserved)),
            ..case("post reserved field", 0x5c, IN, S::INVALID_PARAMETER)
        },
        Case {
            post: Some((IN, zero_type)),
            ..case("post type zero", 0x5c, IN, S::INVALID_PARAMETER)
        },
        Case {
            post: Some((IN, hv_type)),
            ..case("post hypervisor type", 0x5c, IN, S::INVALID_PARAMETER)
        },
        Case {
            post: Some((IN, big)),
            ..case("post payload 241", 0x5c, IN, S::INVALID_PARAMETER)
        },
    ];
    for c in cases {
        let mem = memory();
        if let Some((gpa, block)) = c.post {
            mem.write(gpa, block.as_bytes()).unwrap();
        }
        let mut regs = x64(c.control, c.rdx, c.r8);
        let mut h = TestHandler::default();
        let out = run(DispatchConfig::default(), &mut regs, &mem, &mut h);
        assert_eq!(status_of(out), c.expect, "{}", c.name);
        assert_eq!(regs.rax, u64::from(c.expect.0), "{}", c.name);
        let called = !(h.posts.is_empty() && h.signals.is_empty() && h.generic.is_empty());
        assert_eq!(called, c.handler_called, "{}", c.name);
    }
}

#[test]
fn handler_status_passes_through() {
    let mem = memory();
    let mut h = TestHandler {
        status: Some(HvStatus::INVALID_CONNECTION_ID),
        ..Default::default()
    };
    let mut regs = x64(0x1_005d, 9, 0);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::INVALID_CONNECTION_ID
    );
    h.status = Some(HvStatus::INSUFFICIENT_BUFFERS);
    mem.write(IN, post_block(1, HvMessageType::VMBUS.0, b"").as_bytes())
        .unwrap();
    let mut regs = x64(0x5c, IN, 0);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::INSUFFICIENT_BUFFERS
    );
}

fn rep_setup(mem: &AtomicMemory, values: &[u64]) {
    mem.write(IN, &3u64.to_le_bytes()).unwrap();
    for (i, v) in values.iter().enumerate() {
        mem.write(IN + 16 + 8 * i as u64, &v.to_le_bytes()).unwrap();
    }
}

fn rep_output(mem: &AtomicMemory, i: u64) -> (u64, u64) {
    (
        mem.read_u64(OUT + 16 * i).unwrap(),
        mem.read_u64(OUT + 16 * i + 8).unwrap(),
    )
}

fn rep_control(count: u16, start: u16) -> u64 {
    HypercallInput::rep(REP_CODE, count).with_rep_start(start).0
}

#[test]
fn rep_call_rules() {
    let mem = memory();
    rep_setup(&mem, &[1, 2, 3, 4]);
    let mut h = TestHandler::default();
    use HvStatus as S;
    for (control, expect) in [
        (
            HypercallInput::simple(REP_CODE).0,
            S::INVALID_HYPERCALL_INPUT,
        ),
        (rep_control(4, 4), S::INVALID_HYPERCALL_INPUT),
        (rep_control(4, 0xfff), S::INVALID_HYPERCALL_INPUT),
        (rep_control(4, 0) | 1 << 17, S::INVALID_HYPERCALL_INPUT),
        (rep_control(4, 0) | 1 << 45, S::INVALID_HYPERCALL_INPUT),
        // 16 + 8 × 4095 bytes of input cannot fit one page.
        (rep_control(0xfff, 0), S::INVALID_ALIGNMENT),
    ] {
        let mut regs = x64(control, IN, OUT);
        assert_eq!(
            status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
            expect,
            "{control:#x}"
        );
    }
    assert!(h.generic.is_empty());
    // Output block unaligned / crossing / overlapping the input block (the TLFS: the two
    // lists "cannot overlap"): the input is 16 + 8 × 4 bytes at IN.
    for out in [OUT + 4, OUT + 0xfd0, IN, IN + 40, IN - 8] {
        let mut regs = x64(rep_control(4, 0), IN, out);
        assert_eq!(
            status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
            S::INVALID_ALIGNMENT
        );
    }
    assert!(h.generic.is_empty());
}

#[test]
fn rep_call_completes_and_restarts() {
    let mem = memory();
    rep_setup(&mem, &[10, 20, 30, 40, 50]);
    let mut h = TestHandler {
        budget: Some(2),
        ..Default::default()
    };
    // Return-to-guest continuation: success with reps completed < count, guest loops.
    let mut start = 0;
    let mut calls = 0;
    while start < 5 {
        let mut regs = x64(rep_control(5, start), IN, OUT);
        let r = run(DispatchConfig::default(), &mut regs, &mem, &mut h)
            .result()
            .unwrap();
        assert!(r.is_success());
        assert!(r.reps_completed() > start);
        start = r.reps_completed();
        calls += 1;
    }
    assert_eq!(calls, 3);
    // The handler saw the elements from rep_start on each time.
    let seen: Vec<usize> = h.generic.iter().map(|g| g.1 / 8).collect();
    assert_eq!(seen, [5, 3, 1]);
    for i in 0..5 {
        let v = 10 * (i + 1);
        assert_eq!(rep_output(&mem, i), (3 * v, v));
    }
}

#[test]
fn rep_call_retry_in_place() {
    let mem = memory();
    rep_setup(&mem, &[1, 2, 3]);
    let mut h = TestHandler {
        budget: Some(2),
        ..Default::default()
    };
    let config = DispatchConfig {
        rep_continuation: RepContinuation::RetryInPlace,
        ..Default::default()
    };
    let mut regs = x64(rep_control(3, 0), IN, OUT);
    let out = run(config, &mut regs, &mem, &mut h);
    assert_eq!(
        out,
        DispatchOutcome::Retry(HypercallInput(rep_control(3, 2)))
    );
    assert_eq!(regs.rcx, rep_control(3, 2), "control rewritten");
    assert_eq!(regs.rax, 0xdead, "no result while retrying");
    // The VMM re-executes: the same registers now finish the call.
    let out = run(config, &mut regs, &mem, &mut h);
    assert_eq!(out.result().unwrap().reps_completed(), 3);
    assert_eq!(regs.rax, 3 << 32);
    assert_eq!(rep_output(&mem, 2), (9, 3));
}

#[test]
fn rep_call_error_reports_elements_done() {
    let mem = memory();
    rep_setup(&mem, &[1, 2, u64::MAX, 4]);
    let mut h = TestHandler::default();
    let mut regs = x64(rep_control(4, 1), IN, OUT);
    let r = run(DispatchConfig::default(), &mut regs, &mem, &mut h)
        .result()
        .unwrap();
    assert_eq!(r.call_status(), HvStatus::INVALID_PARAMETER);
    assert_eq!(r.reps_completed(), 2);
    assert_eq!(rep_output(&mem, 1), (6, 2));
    assert_eq!(
        rep_output(&mem, 0),
        (0, 0),
        "elements before rep_start untouched"
    );
    assert_eq!(rep_output(&mem, 2), (0, 0), "failed element not written");
}

#[test]
fn xmm_fast_input_and_output() {
    let mem = memory();
    let input = [1u64, 2, 3, 4, 5, 6];
    let set_input = |regs: &mut X64Registers| {
        regs.rdx = input[0];
        regs.r8 = input[1];
        regs.xmm[0] = u128::from(input[2]) | u128::from(input[3]) << 64;
        regs.xmm[1] = u128::from(input[4]) | u128::from(input[5]) << 64;
    };
    let control = HypercallInput::simple(WIDE_CODE).with_fast(true).0;
    let full = DispatchConfig {
        xmm_fast_input: true,
        xmm_fast_output: true,
        ..Default::default()
    };
    let mut h = TestHandler::default();
    let mut regs = x64(control, 0, 0);
    set_input(&mut regs);
    assert_eq!(
        status_of(run(full, &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    // Three input pairs (RDX/R8, XMM0, XMM1): output in XMM2.
    let xor = input.iter().fold(0, |a, b| a ^ b);
    assert_eq!(regs.xmm[2], 21 | u128::from(xor) << 64);
    assert_eq!(regs.xmm[3], 0);

    for (config, conv) in [
        (
            DispatchConfig {
                xmm_fast_output: true,
                ..Default::default()
            },
            CallingConvention::X64,
        ),
        (
            DispatchConfig {
                xmm_fast_input: true,
                ..Default::default()
            },
            CallingConvention::X64,
        ),
        (full, CallingConvention::X86),
    ] {
        let mut regs = x64(control, 0, 0);
        if conv == CallingConvention::X86 {
            regs.rax = control;
            regs.rdx = 0;
        }
        set_input(&mut regs);
        let out = Dispatcher::new(config).dispatch(conv, &mut regs, &mem, &mut h);
        assert_eq!(
            status_of(out),
            HvStatus::INVALID_HYPERCALL_INPUT,
            "{config:?} {conv:?}"
        );
        assert_eq!(regs.xmm[2], 0, "nothing written");
    }

    // A failing simple call writes no output.
    let mut h = TestHandler {
        status: Some(HvStatus::ACCESS_DENIED),
        ..Default::default()
    };
    let mut regs = x64(control, 0, 0);
    set_input(&mut regs);
    assert_eq!(
        status_of(run(full, &mut regs, &mem, &mut h)),
        HvStatus::ACCESS_DENIED
    );
    assert_eq!(regs.xmm[2], 0);
}

#[test]
fn xmm_fast_rep_call_keeps_earlier_output_registers() {
    // Header 16 + 2 elements × 8 = 32 bytes in (2 pairs); output 2 × 16 = 32 bytes (2 pairs).
    let mem = memory();
    let mut h = TestHandler {
        budget: Some(1),
        ..Default::default()
    };
    let config = DispatchConfig {
        xmm_fast_input: true,
        xmm_fast_output: true,
        ..Default::default()
    };
    let mut regs = x64(rep_control(2, 0) | 1 << 16, 5, 0);
    regs.xmm[0] = 7 | 8 << 64;
    let r = run(config, &mut regs, &mem, &mut h).result().unwrap();
    assert_eq!(r.reps_completed(), 1);
    assert_eq!(regs.xmm[1], 35 | 7 << 64);
    assert_eq!(regs.xmm[2], 0);
    regs.rcx = rep_control(2, 1) | 1 << 16;
    let r = run(config, &mut regs, &mem, &mut h).result().unwrap();
    assert_eq!(r.reps_completed(), 2);
    assert_eq!(regs.xmm[1], 35 | 7 << 64, "first element kept");
    assert_eq!(regs.xmm[2], 40 | 8 << 64);
}

#[test]
fn variable_header_call() {
    let mem = memory();
    mem.write(IN, &[1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    mem.write(IN + 8, &[2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    let mut h = TestHandler::default();
    let control = HypercallInput::simple(VAR_CODE)
        .with_variable_header_size(2)
        .0;
    let mut regs = x64(control, IN, OUT);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    assert_eq!(mem.read_u64(OUT).unwrap(), 6);
    // The largest variable header that still fits the page.
    let control = HypercallInput::simple(VAR_CODE)
        .with_variable_header_size(511)
        .0;
    let mut regs = x64(control, IN, OUT);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::SUCCESS
    );
    let control = HypercallInput::simple(VAR_CODE)
        .with_variable_header_size(512)
        .0;
    let mut regs = x64(control, IN, OUT);
    assert_eq!(
        status_of(run(DispatchConfig::default(), &mut regs, &mem, &mut h)),
        HvStatus::INVALID_ALIGNMENT
    );
}

#[path = "output_tests.rs"]
mod output_tests;
