//! Split an arbitrary file: splitting what opens never panics, and when it succeeds the
//! parts open as a set with the same number of images.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run split fuzz/corpus/split fuzz/seeds/open`

#![no_main]

use libfuzzer_sys::fuzz_target;
use wim_image::write::split::split;
use wim_image::Wim;

fuzz_target!(|data: &[u8]| {
    let Ok(wim) = Wim::open(data) else {
        return;
    };
    let max = 64 + u64::from(data.last().copied().unwrap_or(0)) * 64;
    let Ok(parts) = split(&wim, max, &mut |_| Ok(Vec::new())) else {
        return;
    };
    let set = Wim::open_parts(parts.iter().map(Vec::as_slice).collect())
        .expect("the parts open as a set");
    assert_eq!(set.image_count(), wim.image_count());
});
