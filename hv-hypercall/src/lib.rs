//! # `hv-hypercall`: the Hyper-V hypercall ABI
//!
//! The Hyper-V Top-Level Functional Specification (TLFS) defines how a guest discovers a
//! Hyper-V-compatible hypervisor (CPUID leaves 0x40000000 and up), the synthetic MSRs (guest OS id,
//! hypercall page, SynIC, reference TSC), the synthetic interrupt controller (message and event-flag
//! pages, SINTs, EOM) and the hypercall calling convention (input value, result value, fast and
//! rep calls). This crate implements that ABI for both sides: a VMM serving it and a guest calling it.
//!
//! ## Status
//!
//! Nothing is implemented yet. The definitions, the CPUID builder, the per-VP SynIC model and the
//! hypercall dispatcher arrive with the hypercall issue.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | via `std` | heap-backed conveniences; needs only `core` + `alloc` |
//! | `std` | yes | operating-system conveniences (files, `std::error::Error`); implies `alloc` |
//!
//! With `default-features = false` the crate is `#![no_std]` and needs only `core`.

#![cfg_attr(not(feature = "std"), no_std)]
