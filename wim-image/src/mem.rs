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
//!
//! Fallible allocation does not protect against committing more pages than the machine
//! has (a zeroed buffer is committed as it is filled or used), so work that multiplies its
//! memory by a thread count (each compression thread holds its own compressor, about 9
//! bytes per byte of an LZMS chunk of up to 1 GiB; each decoder thread its own chunk
//! buffers) first fits the count to the memory at hand: [`ThreadCount`].

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

/// How many worker threads a job uses: those wanted, and those that fit in memory.
///
/// The rule (as wimlib-imagex reduces its compression threads): with more than one thread
/// wanted and a memory budget known, `used` is the largest count whose threads, each
/// holding `per_thread` bytes, fit in the budget beside the `shared` bytes the job holds
/// whatever the count; never more than wanted, never fewer than one. The budget is one
/// given by the caller, or else what the system reports available when the job starts
/// (Linux: `MemAvailable` of `/proc/meminfo`; elsewhere nothing, and no reduction).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadCount {
    /// Threads asked for (all cores, at most 64, when 0 was asked).
    pub wanted: usize,
    /// Threads used.
    pub used: usize,
}

impl ThreadCount {
    /// `wanted` threads of `per_thread` bytes each, fitted with `shared` bytes into
    /// `budget` (`None`: no limit); see the type's documentation.
    pub(crate) fn fit(wanted: usize, per_thread: u64, shared: u64, budget: Option<u64>) -> Self {
        let used = match budget {
            Some(budget) if wanted > 1 => {
                let room = budget.saturating_sub(shared) / per_thread.max(1);
                usize::try_from(room).unwrap_or(usize::MAX).clamp(1, wanted)
            }
            _ => wanted,
        };
        ThreadCount { wanted, used }
    }

    /// Whether fewer threads are used than wanted.
    pub fn reduced(&self) -> bool {
        self.used < self.wanted
    }
}

/// The memory available for new allocations without swapping, as the system reports it
/// (Linux: `MemAvailable` in `/proc/meminfo`); `None` elsewhere, or if it cannot be read.
#[cfg(feature = "std")]
pub(crate) fn available() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| mem_available(&t))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Without `std` no system is asked: no limit.
#[cfg(not(feature = "std"))]
pub(crate) fn available() -> Option<u64> {
    None
}

/// The `MemAvailable:` line of a `/proc/meminfo` text, in bytes (the file gives kB).
#[cfg(any(test, all(feature = "std", target_os = "linux")))]
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let mut words = line.split_whitespace();
    let kb: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kb.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_fit_the_budget() {
        const GIB: u64 = 1 << 30;
        let fit = ThreadCount::fit;
        // No budget, or one thread: as wanted.
        assert_eq!(
            fit(64, GIB, 0, None),
            ThreadCount {
                wanted: 64,
                used: 64
            }
        );
        assert_eq!(fit(1, 100 * GIB, 0, Some(GIB)).used, 1);
        // As many as fit beside the shared bytes; never none, never more than wanted.
        assert_eq!(fit(64, GIB, 2 * GIB, Some(16 * GIB)).used, 14);
        assert_eq!(fit(64, 20 * GIB, 0, Some(16 * GIB)).used, 1);
        assert_eq!(fit(64, GIB, 20 * GIB, Some(16 * GIB)).used, 1);
        assert_eq!(fit(8, 1, 0, Some(u64::MAX)).used, 8);
        assert_eq!(fit(8, 0, 0, Some(0)).used, 1);
        assert!(fit(64, GIB, 0, Some(16 * GIB)).reduced());
        assert!(!fit(16, GIB, 0, Some(16 * GIB)).reduced());
    }

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       24684092 kB\nMemFree:        21639032 kB\n\
                    MemAvailable:   23693744 kB\nBuffers:          123 kB\n";
        assert_eq!(mem_available(text), Some(23_693_744 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: lots kB\n"), None);
        assert_eq!(mem_available("MemAvailable: 5 MB\n"), None);
    }

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
