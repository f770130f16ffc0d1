//! Property tests of the dispatcher over arbitrary register values and guest memory: it never
//! panics, always answers with a status it is allowed to produce, never sets reserved result
//! bits, never reports more reps than asked, and touches no register or memory it should not.

use hv_hypercall::defs::{HvStatus, HypercallCode, HypercallInput};
use hv_hypercall::dispatch::{
    CallShape, CallingConvention, DispatchConfig, DispatchOutcome, Dispatcher, GenericCall,
    HypercallHandler, PostMessageRequest, RepContinuation, RepResult, SignalEventRequest,
    X64Registers,
};
use hv_hypercall::memory::{AtomicMemory, GuestMemory};
use proptest::prelude::*;

const MEMORY: u64 = 0x4000;
const IN: u64 = 0x1000;
const OUT: u64 = 0x2000;

/// Serves POST_MESSAGE, SIGNAL_EVENT, a rep call and a simple call with output, answering with
/// statuses from a fixed menu.
struct Handler {
    status: HvStatus,
    budget: u16,
    called: bool,
}

const REP: HypercallCode = HypercallCode::GET_VP_REGISTERS;
const SIMPLE: HypercallCode = HypercallCode::TRANSLATE_VIRTUAL_ADDRESS;

impl HypercallHandler for Handler {
    fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
        assert!(r.payload.len() <= 240);
        assert!(r.message_type.is_postable());
        self.called = true;
        self.status
    }

    fn signal_event(&mut self, r: SignalEventRequest) -> HvStatus {
        assert!(r.flag_number < 2048);
        self.called = true;
        self.status
    }

    fn shape(&self, code: HypercallCode) -> Option<CallShape> {
        match code {
            REP => Some(CallShape::Rep {
                header_size: 8,
                input_element_size: 8,
                output_element_size: 16,
                variable_header: true,
            }),
            SIMPLE => Some(CallShape::Simple {
                input_size: 24,
                output_size: 16,
                variable_header: false,
            }),
            _ => None,
        }
    }

    fn call(&mut self, call: GenericCall<'_>, output: &mut [u8]) -> RepResult {
        self.called = true;
        if call.code() == REP {
            assert_eq!(call.elements.len() % 8, 0);
            assert_eq!(output.len(), call.elements.len() * 2);
            assert_eq!(
                call.variable_header.len(),
                usize::from(call.input.variable_header_size()) * 8
            );
            output.fill(0xab);
        } else {
            assert_eq!(call.header.len(), 24);
            assert_eq!(output.len(), 16);
        }
        RepResult {
            status: self.status,
            completed: self.budget,
        }
    }
}

fn control() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (
            prop::sample::select(vec![0x5cu16, 0x5d, REP.0, SIMPLE.0, 0x1, 0x8001]),
            any::<bool>(),
            prop_oneof![Just(0u16), 0u16..4, 0u16..0x400],
            prop_oneof![Just(0u16), 1u16..8, 0u16..0x1000],
            prop_oneof![Just(0u16), 0u16..8, 0u16..0x1000],
            prop_oneof![8 => Just(0u64), 1 => any::<u64>()],
        )
            .prop_map(|(code, fast, var, count, start, junk)| {
                HypercallInput::new()
                    .with_code(code)
                    .with_fast(fast)
                    .with_variable_header_size(var)
                    .with_rep_count(count)
                    .with_rep_start(start)
                    .0
                    | (junk & !HypercallInput::DEFINED)
            }),
    ]
}

fn gpa() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(IN),
        Just(OUT),
        (0u64..MEMORY).prop_map(|g| g & !7),
        0u64..MEMORY,
        any::<u64>(),
    ]
}

fn status() -> impl Strategy<Value = HvStatus> {
    prop::sample::select(vec![
        HvStatus::SUCCESS,
        HvStatus::INVALID_CONNECTION_ID,
        HvStatus::INSUFFICIENT_BUFFERS,
        HvStatus::INVALID_PARAMETER,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dispatch_is_total(
        rcx in control(),
        rdx in gpa(),
        r8 in gpa(),
        others in any::<[u64; 4]>(),
        xmm in any::<[u128; 6]>(),
        contents in prop::collection::vec(any::<u8>(), 4096),
        x86 in any::<bool>(),
        xmm_in in any::<bool>(),
        xmm_out in any::<bool>(),
        retry in any::<bool>(),
        handler_status in status(),
        budget in prop_oneof![Just(u16::MAX), 0u16..8],
    ) {
        let memory = AtomicMemory::new(MEMORY);
        memory.write(IN, &contents).unwrap();
        // A plausible PostMessage header half the time.
        if contents[0] & 1 == 0 {
            memory.write(IN + 4, &[0; 4]).unwrap();
            memory.write(IN + 8, &[1, 0, 0, 0, contents[1] % 241, 0, 0, 0]).unwrap();
        }
        let before: Vec<u8> = {
            let mut b = vec![0; MEMORY as usize];
            memory.read(0, &mut b).unwrap();
            b
        };
        let convention = if x86 { CallingConvention::X86 } else { CallingConvention::X64 };
        let mut regs = X64Registers { rax: others[0], rcx, rdx, r8, rbx: others[1], rsi: others[2], rdi: others[3], xmm };
        if x86 {
            // EDX:EAX carries the input value in the 32-bit convention.
            regs.rdx = rcx >> 32;
            regs.rax = rcx & 0xffff_ffff;
            regs.rbx = rdx >> 32;
            regs.rcx = rdx & 0xffff_ffff;
        }
        let initial = regs;
        let input = HypercallInput(convention.input(&mut regs.clone()));
        let config = DispatchConfig {
            xmm_fast_input: xmm_in,
            xmm_fast_output: xmm_out,
            rep_continuation: if retry { RepContinuation::RetryInPlace } else { RepContinuation::ReturnToGuest },
        };
        let mut handler = Handler { status: handler_status, budget, called: false };
        let outcome = Dispatcher::new(config).dispatch(convention, &mut regs, &memory, &mut handler);

        let known = [0x5c, 0x5d, REP.0, SIMPLE.0].contains(&input.code());
        match outcome {
            DispatchOutcome::Completed(result) => {
                prop_assert_eq!(result.reserved_bits(), 0);
                let s = result.call_status();
                let allowed = [
                    HvStatus::SUCCESS,
                    HvStatus::INVALID_HYPERCALL_CODE,
                    HvStatus::INVALID_HYPERCALL_INPUT,
                    HvStatus::INVALID_ALIGNMENT,
                    HvStatus::INVALID_PARAMETER,
                    handler_status,
                ];
                prop_assert!(allowed.contains(&s), "{:?}", s);
                if !known {
                    prop_assert_eq!(s, HvStatus::INVALID_HYPERCALL_CODE);
                }
                if !handler.called {
                    prop_assert_ne!(s, HvStatus::SUCCESS);
                    prop_assert_eq!(result.reps_completed(), 0);
                }
                if input.code() == REP.0 && handler.called {
                    prop_assert!(result.reps_completed() <= input.rep_count());
                    prop_assert!(result.reps_completed() >= input.rep_start());
                } else {
                    prop_assert_eq!(result.reps_completed(), 0);
                }
                // The result lands in RAX (EDX:EAX); the parameter registers stay.
                match convention {
                    CallingConvention::X64 => {
                        prop_assert_eq!(regs.rax, result.0);
                        prop_assert_eq!((regs.rcx, regs.rbx, regs.rsi, regs.rdi), (initial.rcx, initial.rbx, initial.rsi, initial.rdi));
                    }
                    CallingConvention::X86 => {
                        prop_assert_eq!((regs.rdx, regs.rax), (result.0 >> 32, result.0 & 0xffff_ffff));
                        prop_assert_eq!(regs.rbx, initial.rbx);
                    }
                    other => prop_assert!(false, "no check written for {:?}", other),
                }
            }
            DispatchOutcome::Retry(new) => {
                prop_assert!(retry && input.code() == REP.0 && handler.called);
                prop_assert_eq!(new.0 & !(0xfff << 48), input.0 & !(0xfff << 48));
                prop_assert!(new.rep_start() >= input.rep_start());
                prop_assert!(new.rep_start() < input.rep_count());
                prop_assert_eq!(regs.rax, initial.rax);
            }
        }
        // Slow calls and calls without output never touch XMM; nothing but the output page is
        // ever written.
        if !input.fast() || !xmm_out || x86 {
            prop_assert_eq!(regs.xmm, initial.xmm);
        }
        let mut after = vec![0; MEMORY as usize];
        memory.read(0, &mut after).unwrap();
        for (i, (a, b)) in before.iter().zip(&after).enumerate() {
            if a != b {
                let gpa = i as u64;
                let out = convention.output_gpa(&mut initial.clone());
                prop_assert!(!input.fast() && gpa >= out && gpa < out + 4096, "wrote {:#x}", gpa);
            }
        }
    }
}
