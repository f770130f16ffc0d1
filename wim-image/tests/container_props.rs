//! Property tests of the container parsers: XML documents survive a write/parse round trip
//! with every element, attribute and text kept; the header, blob table, metadata and whole
//! file parsers never panic on arbitrary bytes.

use proptest::prelude::*;
use wim_image::blob_table::BlobTable;
use wim_image::header::Header;
use wim_image::metadata::Tree;
use wim_image::xml::{Element, XmlInfo, XmlNode};
use wim_image::Wim;

fn name() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9_]{0,8}"
}

fn text() -> impl Strategy<Value = String> {
    // Non-blank text (roxmltree keeps whitespace-only nodes too, but adjacent text nodes would
    // merge, so each element holds at most one text child here).
    "[a-zA-Z0-9 <>&\"'é✓]{1,12}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn element() -> impl Strategy<Value = Element> {
    let leaf = (
        name(),
        proptest::collection::vec((name(), text()), 0..3),
        proptest::option::of(text()),
    )
        .prop_map(|(name, attrs, t)| {
            let mut attributes: Vec<(String, String)> = Vec::new();
            for (n, v) in attrs {
                if !attributes.iter().any(|(m, _)| *m == n) {
                    attributes.push((n, v));
                }
            }
            Element {
                name,
                attributes,
                children: t.into_iter().map(XmlNode::Text).collect(),
            }
        });
    leaf.prop_recursive(4, 32, 4, |inner| {
        (name(), proptest::collection::vec(inner, 0..4)).prop_map(|(name, kids)| Element {
            name,
            attributes: Vec::new(),
            children: kids.into_iter().map(XmlNode::Element).collect(),
        })
    })
}

proptest! {
    #[test]
    fn xml_round_trip(kids in proptest::collection::vec(element(), 0..4)) {
        let root = Element {
            name: "WIM".into(),
            attributes: Vec::new(),
            children: kids.into_iter().map(XmlNode::Element).collect(),
        };
        let doc = XmlInfo::new(root);
        let text = doc.to_xml_string();
        let mut utf16 = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        prop_assert_eq!(XmlInfo::parse(&utf16).unwrap(), doc);
    }

    #[test]
    fn header_never_panics(bytes in proptest::collection::vec(any::<u8>(), 208)) {
        let mut b = [0u8; 208];
        b.copy_from_slice(&bytes);
        // Also with a valid magic, so that later checks are reached.
        let _ = Header::parse(&b).map(|h| h.compression());
        b[..8].copy_from_slice(b"MSWIM\0\0\0");
        b[8..12].copy_from_slice(&208u32.to_le_bytes());
        let _ = Header::parse(&b).map(|h| h.compression());
    }

    #[test]
    fn blob_table_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), part in 0u16..3) {
        if let Ok(t) = BlobTable::parse(&bytes, part) {
            for b in &t.blobs {
                prop_assert_eq!(t.get(&b.hash).map(|x| x.hash), Some(b.hash));
            }
        }
    }

    #[test]
    fn metadata_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(tree) = Tree::parse(&bytes) {
            prop_assert!(tree.walk().count() == tree.nodes().len());
        }
    }

    #[test]
    fn open_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 208..1024)) {
        bytes[..8].copy_from_slice(b"MSWIM\0\0\0");
        bytes[8..12].copy_from_slice(&208u32.to_le_bytes());
        if let Ok(mut wim) = Wim::open(bytes.as_slice()) {
            wim.set_max_chunk_size(1 << 20);
            let _ = wim.verify(&mut |_| {});
        }
    }
}
