//! Append to an arbitrary file: opening it for an in-place append never panics, and when it
//! opens, appending a small image gives a file our reader opens with the new image readable.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run append fuzz/corpus/append fuzz/seeds/open`

#![no_main]

use libfuzzer_sys::fuzz_target;
use wim_image::defs::FileAttributes;
use wim_image::write::image::{Content, Inode, NewImage};
use wim_image::write::{ImageProps, NoBlobs, WimWriter, WriteOptions};
use wim_image::Wim;

fuzz_target!(|data: &[u8]| {
    let opts = WriteOptions {
        threads: 1,
        now: 0,
        guid: [0; 16],
        ..WriteOptions::default()
    };
    let Ok(mut w) = WimWriter::append(data.to_vec(), &opts) else {
        return;
    };
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
    let mut f = Inode::new(FileAttributes::NORMAL, 0, 0, 0);
    f.data = img.add_stream(4, Content::Bytes(b"fuzz".as_slice().into()));
    let f = img.add_inode(f);
    img.add_dentry(0, "f".into(), f);
    let props = ImageProps {
        name: "appended by the fuzzer".into(),
        ..ImageProps::default()
    };
    if w.add_image(&mut img, &props, &mut NoBlobs).is_err() {
        return;
    }
    let Ok(out) = w.finish() else {
        return;
    };
    let wim = Wim::open(out.as_slice()).expect("an appended WIM opens");
    let tree = wim.image(wim.image_count()).expect("the new image reads");
    assert!(tree.lookup("/f").is_some());
});
