//! The metadata-resource parser (security data, dentry tree, names, streams, tagged items) on
//! arbitrary bytes: never a panic; every node reachable, paths and lookups consistent (the
//! exact WTF-8 path finds each node).
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
    assert!(tree.nodes().len() <= data.len() / 102 + 1);
    let mut seen = 0;
    for id in tree.walk() {
        seen += 1;
        let node = tree.node(id);
        let _ = node.dentry.unix_data();
        let _ = node.dentry.object_id();
        if id != 0 {
            // The exact path (WTF-8, as a Linux file name) finds the node itself; the lossy
            // path finds a node (names that are not valid UTF-16 may share a lossy form).
            let mut exact = Vec::new();
            let mut cur = id;
            let mut parts = Vec::new();
            while cur != 0 {
                parts.push(tree.node(cur).dentry.name_wtf8());
                cur = tree.node(cur).parent;
            }
            for p in parts.iter().rev() {
                exact.push(b'/');
                exact.extend_from_slice(p);
            }
            assert_eq!(tree.lookup_wtf8(&exact), Some(id), "{exact:?}");
            let path = tree.path(id);
            assert!(tree.lookup(&path).is_some(), "{path}");
        }
    }
    assert_eq!(seen, tree.nodes().len());
});
