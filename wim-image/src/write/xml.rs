//! Building and updating the XML document: `<IMAGE>` elements with their statistics, the
//! file's `<TOTALBYTES>`, renumbering, and the UTF-16LE encoding with a byte-order mark.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::xml::{Element, ImageMut, XmlInfo, XmlNode};

use super::image::ImageStats;

/// Names and properties of a new image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageProps {
    /// `<NAME>` (must be unique in a WIM; empty: none).
    pub name: String,
    /// `<DESCRIPTION>`, if any.
    pub description: Option<String>,
    /// `<FLAGS>` (the edition id), if any.
    pub flags: Option<String>,
}

fn text(name: &str, value: String) -> Element {
    Element {
        name: String::from(name),
        attributes: Vec::new(),
        children: alloc::vec![XmlNode::Text(value)],
    }
}

fn filetime(name: &str, ft: u64) -> Element {
    Element {
        name: String::from(name),
        attributes: Vec::new(),
        children: alloc::vec![
            XmlNode::Element(text("HIGHPART", format!("0x{:08X}", ft >> 32))),
            XmlNode::Element(text("LOWPART", format!("0x{:08X}", ft & 0xFFFF_FFFF))),
        ],
    }
}

/// Replaces the child element `new.name` of `e` in place, or appends it.
fn replace_child(e: &mut Element, new: Element) {
    for c in e.children.iter_mut() {
        if let XmlNode::Element(old) = c {
            if old.name == new.name {
                *old = new;
                return;
            }
        }
    }
    e.children.push(XmlNode::Element(new));
}

/// A new `<IMAGE INDEX="index">` with its properties, statistics and times (`now`, FILETIME).
pub fn image_element(index: u32, props: &ImageProps, stats: &ImageStats, now: u64) -> Element {
    let mut e = Element {
        name: String::from("IMAGE"),
        attributes: alloc::vec![(String::from("INDEX"), format!("{index}"))],
        children: Vec::new(),
    };
    if !props.name.is_empty() {
        e.children
            .push(XmlNode::Element(text("NAME", props.name.clone())));
    }
    if let Some(d) = &props.description {
        e.children
            .push(XmlNode::Element(text("DESCRIPTION", d.clone())));
    }
    if let Some(f) = &props.flags {
        e.children.push(XmlNode::Element(text("FLAGS", f.clone())));
    }
    set_stats(&mut e, stats, now);
    e.children
        .push(XmlNode::Element(filetime("CREATIONTIME", now)));
    replace_child(&mut e, filetime("LASTMODIFICATIONTIME", now));
    e
}

/// Sets DIRCOUNT, FILECOUNT, TOTALBYTES, HARDLINKBYTES and LASTMODIFICATIONTIME.
pub fn set_stats(e: &mut Element, s: &ImageStats, now: u64) {
    replace_child(e, text("DIRCOUNT", format!("{}", s.dir_count)));
    replace_child(e, text("FILECOUNT", format!("{}", s.file_count)));
    replace_child(e, text("TOTALBYTES", format!("{}", s.total_bytes)));
    replace_child(e, text("HARDLINKBYTES", format!("{}", s.hard_link_bytes)));
    replace_child(e, filetime("LASTMODIFICATIONTIME", now));
}

/// An empty document.
pub fn empty_document() -> XmlInfo {
    XmlInfo::new(Element {
        name: String::from("WIM"),
        attributes: Vec::new(),
        children: Vec::new(),
    })
}

/// Appends an image element after the last one (so before the document's `<TOTALBYTES>`),
/// keeping the document's image index ([`XmlInfo::push_image`]).
pub fn push_image(doc: &mut XmlInfo, image: Element) {
    doc.push_image(image);
}

/// Keeps only the `<IMAGE>` elements whose 1-based position is in `keep` (in that order),
/// renumbered 1, 2, …; every other element stays.
pub fn select_images(doc: &mut XmlInfo, keep: &[u32]) {
    let mut images = Vec::new();
    let mut others = Vec::new();
    let root = doc.root_mut();
    for c in core::mem::take(&mut root.children) {
        match c {
            XmlNode::Element(e) if e.name == "IMAGE" => images.push(Some(e)),
            other => others.push(other),
        }
    }
    let mut out: Vec<XmlNode> = Vec::new();
    for (n, &k) in keep.iter().enumerate() {
        if let Some(mut e) = images.get_mut(k as usize - 1).and_then(Option::take) {
            set_index(&mut e, n as u32 + 1);
            out.push(XmlNode::Element(e));
        }
    }
    out.extend(others);
    root.children = out;
    doc.reindex();
}

/// Sets the `INDEX` attribute.
pub fn set_index(e: &mut Element, index: u32) {
    match e.attributes.iter_mut().find(|(n, _)| n == "INDEX") {
        Some((_, v)) => *v = format!("{index}"),
        None => e
            .attributes
            .insert(0, (String::from("INDEX"), format!("{index}"))),
    }
}

/// Sets `<NAME>`.
pub fn set_name(e: &mut Element, name: &str) {
    replace_child(e, text("NAME", String::from(name)));
}

/// The `<IMAGE>` element of image `index` (1-based: the one with that `INDEX`, else the
/// `index`-th), found through the document's image index ([`XmlInfo::image_mut`]).
pub fn image_mut(doc: &mut XmlInfo, index: u32) -> Option<ImageMut<'_>> {
    doc.image_mut(index)
}

/// Replaces the `<IMAGE>` element of image `index` (as [`image_mut`] finds it).
pub fn replace_image(doc: &mut XmlInfo, index: u32, image: Element) {
    if let Some(mut e) = image_mut(doc, index) {
        *e = image;
    }
}

/// Sets the document's `<TOTALBYTES>` (the end of the blob table), moving it last.
pub fn set_total_bytes(doc: &mut XmlInfo, total: u64) {
    let root = doc.root_mut();
    root.children
        .retain(|c| !matches!(c, XmlNode::Element(e) if e.name == "TOTALBYTES"));
    root.children
        .push(XmlNode::Element(text("TOTALBYTES", format!("{total}"))));
    doc.reindex();
}

/// The document as stored: UTF-16LE with a byte-order mark, no declaration.
pub fn encode(doc: &XmlInfo) -> Vec<u8> {
    let s = doc.to_xml_string();
    let mut out = Vec::with_capacity(2 + s.len() * 2);
    out.extend_from_slice(&[0xFF, 0xFE]);
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_round_trip() {
        let mut doc = empty_document();
        let stats = ImageStats {
            dir_count: 2,
            file_count: 3,
            total_bytes: 40,
            hard_link_bytes: 5,
        };
        let props = ImageProps {
            name: "a <b>".into(),
            description: Some("d".into()),
            flags: None,
        };
        push_image(
            &mut doc,
            image_element(1, &props, &stats, 0x01D9_0000_1234_5678),
        );
        set_total_bytes(&mut doc, 999);
        push_image(
            &mut doc,
            image_element(2, &ImageProps::default(), &stats, 7),
        );
        let x = XmlInfo::parse(&encode(&doc)).unwrap();
        assert_eq!(x.total_bytes(), Some(999));
        let i = x.image(1).unwrap();
        assert_eq!(i.name().as_deref(), Some("a <b>"));
        assert_eq!(i.description().as_deref(), Some("d"));
        assert_eq!((i.dir_count(), i.file_count()), (Some(2), Some(3)));
        assert_eq!((i.total_bytes(), i.hard_link_bytes()), (Some(40), Some(5)));
        assert_eq!(i.creation_time(), Some(0x01D9_0000_1234_5678));
        assert_eq!(x.image(2).unwrap().index(), Some(2));
        select_images(&mut doc, &[2]);
        let x = XmlInfo::parse(&encode(&doc)).unwrap();
        assert_eq!(x.images().count(), 1);
        assert_eq!(x.image(1).unwrap().creation_time(), Some(7));
    }

    /// A writer's document stays indexed while images are added (`add_image_with`, as
    /// export and rebuilds call it: `push_image`, then `replace_image`), so that each
    /// lookup is a binary search; `push_image` used to drop the index and `replace_image`
    /// searched the document, O(n) per image of a rebuild.
    #[test]
    fn a_writer_keeps_its_document_indexed() {
        use crate::defs::FileAttributes;
        use crate::write::image::{Inode, NewImage};
        use crate::write::{NoBlobs, WimWriter, WriteOptions};

        let opts = WriteOptions {
            threads: 1,
            ..WriteOptions::default()
        };
        let mut w = WimWriter::create(Vec::new(), &opts).unwrap();
        let stats = ImageStats::default();
        for i in 1..=40u32 {
            let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 0, 0, 0));
            let from = image_element(77, &ImageProps::default(), &stats, 5);
            let props = ImageProps {
                name: format!("image {i}"),
                ..ImageProps::default()
            };
            assert_eq!(
                w.add_image_with(&mut img, &props, &mut NoBlobs, Some(from), &mut |_| {
                    core::ops::ControlFlow::Continue(())
                })
                .unwrap(),
                i
            );
            assert!(w.xml.is_indexed(), "image {i}");
            let e = w.xml.image(i).unwrap();
            assert_eq!((e.index(), e.name()), (Some(i), Some(props.name)));
        }
        let x = XmlInfo::parse(&encode(&w.xml)).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(x.images().count(), 40);
        let wim = crate::Wim::open(&bytes[..]).unwrap();
        assert_eq!(
            wim.xml().image(40).unwrap().name().as_deref(),
            Some("image 40")
        );
    }
}
