//! The metadata-resource parser (security data, dentry tree, names, streams, tagged items) on
//! arbitrary bytes: never a panic; every node reachable, paths and lookups consistent.
//!
//! Run: `cd wim-image && cargo +nightly fuzz run metadata fuzz/corpus/metadata fuzz/seeds/metadata`

#![no_main]

use libfuzzer_sys::fuzz_target;
use wim_image::metadata::Tree;

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = Tree::parse(data) else {
        return;
    };
    // Each dentry costs at least 102 bytes of input, so the tree is bounded by the input.
    assert!(tree.nodes.len() <= data.len() / 102 + 1);
    let mut seen = 0;
    for id in tree.walk() {
        seen += 1;
        let node = tree.node(id);
        let _ = node.dentry.unix_data();
        let _ = node.dentry.object_id();
        if id != 0 {
            let path = tree.path(id);
            assert_eq!(tree.lookup(&path), Some(id), "{path}");
        }
    }
    assert_eq!(seen, tree.nodes.len());
});
