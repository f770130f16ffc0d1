//! Fallible allocation for buffers whose size a file or a caller chooses.
//!
//! A WIM names sizes everywhere (tables, resources, chunks, metadata) and a hostile one can
//! name any of them up to 2^64; a caller can ask for a 1 GiB LZMS chunk. Such sizes are
//! first checked against what can be genuine (the file's size, the codec's limits), but
//! those bounds can still exceed the memory at hand: every buffer sized this way is
//! reserved with [`Vec::try_reserve_exact`] through the helpers here, so that a size the
//! system cannot provide is an [`AllocError`] (carried by the operation's own error type as
//! an `OutOfMemory` variant), never an abort. Buffers of fixed size, or growing with data
//! already in memory, are allocated the ordinary way.

use alloc::vec::Vec;

/// A buffer could not be allocated: the size asked for is more than the system provides
/// (or than the address space holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {bytes} bytes")]
#[non_exhaustive]
pub struct AllocError {
    /// The size asked for, in bytes (saturated at `u64::MAX`).
    pub bytes: u64,
}

impl AllocError {
    /// The error for `len` values of `T`.
    pub(crate) fn of<T>(len: u64) -> Self {
        AllocError {
            bytes: len.saturating_mul(core::mem::size_of::<T>().max(1) as u64),
        }
    }
}

/// `n` as a length in memory (an error on targets whose address space cannot hold it).
pub(crate) fn len<T>(n: u64) -> Result<usize, AllocError> {
    usize::try_from(n).map_err(|_| AllocError::of::<T>(n))
}

/// An empty vector with room for exactly `cap` values.
pub(crate) fn with_capacity<T>(cap: usize) -> Result<Vec<T>, AllocError> {
    let mut v = Vec::new();
    reserve(&mut v, cap)?;
    Ok(v)
}

/// A vector of `n` copies of `value`.
pub(crate) fn filled<T: Clone>(value: T, n: usize) -> Result<Vec<T>, AllocError> {
    let mut v = with_capacity(n)?;
    v.resize(n, value);
    Ok(v)
}

/// Makes room for `additional` more values in `v` (exactly, when it must grow).
pub(crate) fn reserve<T>(v: &mut Vec<T>, additional: usize) -> Result<(), AllocError> {
    v.try_reserve_exact(additional)
        .map_err(|_| AllocError::of::<T>((v.len() as u64).saturating_add(additional as u64)))
}

/// Makes `v` exactly `n` values long: new ones are `value`, old ones past `n` dropped.
pub(crate) fn resize<T: Clone>(v: &mut Vec<T>, n: usize, value: T) -> Result<(), AllocError> {
    if let Some(more) = n.checked_sub(v.len()) {
        reserve(v, more)?;
    }
    v.resize(n, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn impossible_sizes_are_errors() {
        assert_eq!(
            with_capacity::<u8>(1 << 60).unwrap_err(),
            AllocError { bytes: 1 << 60 }
        );
        assert_eq!(filled(0u32, 1 << 60).unwrap_err().bytes, 1 << 62);
        // Beyond u64: saturated.
        assert_eq!(filled(0u64, usize::MAX / 2).unwrap_err().bytes, u64::MAX);
        let mut v = vec![1u8; 3];
        assert!(resize(&mut v, 1 << 62, 0).is_err());
        assert_eq!(v, [1, 1, 1]);
        resize(&mut v, 5, 7).unwrap();
        assert_eq!(v, [1, 1, 1, 7, 7]);
        resize(&mut v, 2, 0).unwrap();
        assert_eq!(v, [1, 1]);
        assert_eq!(AllocError::of::<u64>(u64::MAX).bytes, u64::MAX);
        assert_eq!(len::<u8>(5), Ok(5));
    }
}
