//! Open + list + walk + read + verify + extract-to-memory on an arbitrary file: never a panic,
//! and memory stays bounded (chunks above 4 MiB are refused through
//! `Wim::set_max_chunk_size`; tables are checked against the file before allocation).
//!
//! Run: `cd wim-image && cargo +nightly fuzz run open fuzz/corpus/open fuzz/seeds/open`

#![no_main]

use libfuzzer_sys::fuzz_target;
use wim_image::Wim;

fuzz_target!(|data: &[u8]| {
    let Ok(mut wim) = Wim::open(data) else {
        return;
    };
    wim.set_max_chunk_size(4 << 20);
    let _ = wim.xml().to_xml_string();
    for i in 1..=wim.image_count().min(4) {
        let _ = wim
            .xml()
            .image(i)
            .map(|x| (x.name(), x.total_bytes(), x.creation_time()));
        let Ok(tree) = wim.image(i) else {
            continue;
        };
        let mut reader = wim.reader();
        for id in tree.walk().take(256) {
            let d = &tree.node(id).dentry;
            for h in d.data.iter().chain(d.reparse_data.iter()) {
                let Some(blob) = wim.blob(h) else {
                    continue;
                };
                let blob = *blob;
                // Random access in the middle, then a streamed read of at most 16 MiB.
                let mut buf = [0u8; 64];
                let mid = blob.size / 2;
                let n = (blob.size - mid).min(64) as usize;
                let _ = reader.read_at(&blob, mid, &mut buf[..n]);
                let len = blob.size.min(16 << 20);
                let _ = reader.for_each_piece(&blob, 0, len, &mut |_| Ok(()));
            }
        }
    }
    // Verify reads every blob whole: only when that is a bounded amount of work.
    let total: u64 = wim.blob_table().blobs.iter().map(|b| b.size).sum();
    if total <= 64 << 20 {
        let _ = wim.verify(&mut |_| {});
    }
});
