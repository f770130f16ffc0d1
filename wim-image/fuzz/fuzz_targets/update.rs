//! Change an arbitrary file in place: image 1 edited (a rename, a delete and a new file) and
//! committed with `rewrite`, or deleted in place, never panics; when it succeeds our reader
//! opens the result and finds the change.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run update fuzz/corpus/update fuzz/seeds/open`

#![no_main]

use libfuzzer_sys::fuzz_target;
use wim_image::defs::FileAttributes;
use wim_image::write::export::image_from_tree;
use wim_image::write::image::{Content, Inode, NewImage};
use wim_image::write::inplace::{delete_in_place, Fate};
use wim_image::write::update::Session;
use wim_image::write::{NoBlobs, WimWriter, WriteOptions};
use wim_image::Wim;

fn edit(img: &mut NewImage) -> bool {
    let mut branch = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
    let mut f = Inode::new(FileAttributes::NORMAL, 0, 0, 0);
    f.data = branch.add_stream(4, Content::Bytes(b"fuzz".as_slice().into()));
    let f = branch.add_inode(f);
    let b = branch.add_dentry(0, "x".into(), f);
    let Ok(mut s) = Session::new(img) else {
        return false;
    };
    let _ = s.rename(&"/a".into(), &"/b/c".into());
    let _ = s.delete(&"/d".into(), true, true);
    s.add(&branch, b, &[], &"/fuzz/added".into(), false, 0)
        .is_ok()
}

fuzz_target!(|data: &[u8]| {
    let opts = WriteOptions {
        threads: 1,
        now: 0,
        guid: [0; 16],
        ..WriteOptions::default()
    };
    let Ok(wim) = Wim::open(data) else {
        return;
    };
    let count = wim.image_count();
    if data.first().is_some_and(|b| b & 1 == 1) {
        if let Ok(out) = delete_in_place(data.to_vec(), &[1], &opts) {
            let wim = Wim::open(out.as_slice()).expect("the file opens after a delete");
            assert_eq!(wim.image_count(), count - 1);
        }
        return;
    }
    let Some(mut img) = wim
        .image(1)
        .ok()
        .and_then(|t| image_from_tree(&wim, &t).ok())
    else {
        return;
    };
    if !edit(&mut img) {
        return;
    }
    let mut fates = vec![Fate::Keep; count as usize];
    fates[0] = Fate::Replace;
    let Ok(mut w) = WimWriter::rewrite(data.to_vec(), &opts, &fates) else {
        return;
    };
    if w.replace_image(1, &mut img, &mut NoBlobs).is_err() {
        return;
    }
    let Ok(out) = w.finish() else {
        return;
    };
    let wim = Wim::open(out.as_slice()).expect("an updated WIM opens");
    let tree = wim.image(1).expect("the updated image reads");
    assert!(tree.lookup("/fuzz/added").is_some());
});
