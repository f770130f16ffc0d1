//! Compile-time checks of the public API that only a separate crate can make (run by
//! `cargo test --doc`; nothing here is compiled into the library).
//!
//! The reports callers only read are `#[non_exhaustive]`, so fields can be added to them
//! without breaking anyone; outside this crate they cannot be built with a struct expression:
//!
//! ```compile_fail,E0639
//! let _ = vhd_format::ops::CompactReport {
//!     dropped_zero: 0,
//!     dropped_unused: 0,
//!     moved: 0,
//!     old_len: 0,
//!     new_len: 0,
//! };
//! ```
//!
//! ```compile_fail,E0639
//! use vhd_format::ops::{Extent, ExtentState};
//! let _ = Extent { start: 0, length: 512, state: ExtentState::Zero, file_offset: None };
//! ```
//!
//! ```compile_fail,E0639
//! let _ = vhd_format::ops::CheckReport { problems: Vec::new(), allocated_blocks: 0 };
//! ```
//!
//! ```compile_fail,E0639
//! use vhd_format::{defs::PlatformCode, Locator};
//! let _ = Locator { code: PlatformCode::W2RU, path: String::new() };
//! ```
//!
//! ```compile_fail,E0639
//! let _ = vhd_format::ops::ProgressEvent { phase: "copy", done: 0, total: 1 };
//! ```
//!
//! Reading them needs nothing special:
//!
//! ```
//! fn describe(r: &vhd_format::ops::CompactReport, e: &vhd_format::ops::Extent) -> u64 {
//!     r.dropped_zero + r.dropped_unused + r.moved + r.old_len + r.new_len + e.start + e.length
//! }
//! ```
