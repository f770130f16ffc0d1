//! Fuzzes the hypercall dispatcher with arbitrary registers, guest memory and configuration:
//! it must never panic, always answer with a status it may produce, never set reserved result
//! bits, and never report more reps than the call asked for.

#![no_main]

use arbitrary::Arbitrary;
use hv_hypercall::defs::{HvStatus, HypercallCode, HypercallInput};
use hv_hypercall::dispatch::{
    CallShape, CallingConvention, DispatchConfig, DispatchOutcome, Dispatcher, GenericCall,
    HypercallHandler, PostMessageRequest, RepContinuation, RepResult, SignalEventRequest,
    X64Registers,
};
use hv_hypercall::memory::{AtomicMemory, GuestMemory};
use libfuzzer_sys::fuzz_target;

const MEMORY: u64 = 0x3000;

#[derive(Debug, Arbitrary)]
struct Input {
    rax: u64,
    rcx: u64,
    rdx: u64,
    rbx: u64,
    rsi: u64,
    rdi: u64,
    r8: u64,
    xmm: [u128; 6],
    /// Map the control's code onto the served ones most of the time.
    pick_code: u8,
    /// Confine the GPAs to guest memory most of the time.
    confine: u8,
    x86: bool,
    xmm_in: bool,
    xmm_out: bool,
    retry: bool,
    status: u16,
    budget: u16,
    rep_variable: bool,
    page: Vec<u8>,
}

struct Handler {
    status: HvStatus,
    budget: u16,
    rep_variable: bool,
    called: bool,
}

impl HypercallHandler for Handler {
    fn post_message(&mut self, r: PostMessageRequest<'_>) -> HvStatus {
        assert!(r.payload.len() <= 240 && r.message_type.is_postable());
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
            HypercallCode::GET_VP_REGISTERS => Some(CallShape::Rep {
                header_size: 16,
                input_element_size: 8,
                output_element_size: 16,
                variable_header: self.rep_variable,
            }),
            HypercallCode::TRANSLATE_VIRTUAL_ADDRESS => Some(CallShape::Simple {
                input_size: 40,
                output_size: 24,
                variable_header: true,
            }),
            _ => None,
        }
    }

    fn call(&mut self, call: GenericCall<'_>, output: &mut [u8]) -> RepResult {
        self.called = true;
        output.fill(call.header.first().copied().unwrap_or(0x5a));
        RepResult {
            status: self.status,
            completed: self.budget,
        }
    }
}

fuzz_target!(|input: Input| {
    let memory = AtomicMemory::new(MEMORY);
    let page = &input.page[..input.page.len().min(4096)];
    let _ = memory.write(0x1000, page);
    let codes = [0x5c, 0x5d, 0x50, 0x52];
    let mut rcx = input.rcx;
    if input.pick_code < 200 {
        rcx = (rcx & !0xffff) | codes[usize::from(input.pick_code % 4)];
        if input.pick_code < 100 {
            rcx &= HypercallInput::DEFINED;
        }
    }
    let (mut rdx, mut r8) = (input.rdx, input.r8);
    if input.confine < 200 {
        rdx %= MEMORY;
        r8 %= MEMORY;
        if input.confine < 100 {
            rdx &= !7;
            r8 &= !7;
        }
    }
    let mut regs = X64Registers {
        rax: input.rax,
        rcx,
        rdx,
        rbx: input.rbx,
        rsi: input.rsi,
        rdi: input.rdi,
        r8,
        xmm: input.xmm,
    };
    let convention = if input.x86 {
        regs.rdx = rcx >> 32;
        regs.rax = rcx & 0xffff_ffff;
        regs.rbx = rdx >> 32;
        regs.rcx = rdx & 0xffff_ffff;
        CallingConvention::X86
    } else {
        CallingConvention::X64
    };
    let control = HypercallInput(convention.input(&mut regs.clone()));
    let config = DispatchConfig {
        xmm_fast_input: input.xmm_in,
        xmm_fast_output: input.xmm_out,
        rep_continuation: if input.retry {
            RepContinuation::RetryInPlace
        } else {
            RepContinuation::ReturnToGuest
        },
    };
    let status = HvStatus(input.status);
    let mut handler = Handler {
        status,
        budget: input.budget,
        rep_variable: input.rep_variable,
        called: false,
    };
    match Dispatcher::new(config).dispatch(convention, &mut regs, &memory, &mut handler) {
        DispatchOutcome::Completed(result) => {
            assert_eq!(result.reserved_bits(), 0);
            let s = result.call_status();
            assert!(
                [
                    HvStatus::SUCCESS,
                    HvStatus::INVALID_HYPERCALL_CODE,
                    HvStatus::INVALID_HYPERCALL_INPUT,
                    HvStatus::INVALID_ALIGNMENT,
                    HvStatus::INVALID_PARAMETER,
                    status,
                ]
                .contains(&s),
                "{s:?}"
            );
            if !handler.called {
                assert_ne!(s, HvStatus::SUCCESS);
            }
            assert!(result.reps_completed() <= control.rep_count());
        }
        DispatchOutcome::Retry(new) => {
            assert!(input.retry && handler.called);
            assert!(new.rep_start() >= control.rep_start() && new.rep_start() < new.rep_count());
        }
    }
});
