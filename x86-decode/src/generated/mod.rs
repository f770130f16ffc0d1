//! Generated tables. Each file says how it was generated; do not edit them by hand.

#[rustfmt::skip]
pub(crate) mod validity;
