//! # `x86-decode`: an x86/x86-64 decoder and instruction-completion emulator
//!
//! When a guest touches MMIO or port I/O the hypervisor gets an intercept and must finish the
//! instruction itself: decode it (legacy and REX prefixes, VEX/EVEX, ModRM/SIB addressing in all
//! modes), then emulate its effect on registers, flags and memory through callbacks. This crate is
//! the decoder and that emulator, `no_std` and allocation-free.
//!
//! ## Status
//!
//! Nothing is implemented yet. The decoder arrives with the first x86 issue and the emulator with
//! the second.
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
