//! The XML document: UTF-16LE (with a byte-order mark), one `<WIM>` root holding an
//! `<IMAGE INDEX="n">` per image. Parsed with `roxmltree` into an owned tree that keeps every
//! element, attribute and text node, with typed access to the usual elements.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Largest XML document accepted (bytes, UTF-16).
pub const MAX_XML_SIZE: u64 = 64 << 20;

/// Deepest element nesting accepted (the root `<WIM>` is depth 1). wimlib's documents are
/// five deep (`WIM/IMAGE/WINDOWS/VERSION/MAJOR`); the bound keeps the owned tree's
/// recursive `Drop`, `Clone`, `PartialEq` and [`Element::write_to`] within a small stack.
pub const MAX_XML_DEPTH: usize = 256;

/// Why the XML document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Not a whole number of UTF-16 units, or invalid UTF-16.
    #[error("XML data is not valid UTF-16LE (near byte {offset})")]
    Encoding {
        /// Where.
        offset: usize,
    },
    /// Not well-formed XML.
    #[error("XML is not well formed: {error}")]
    Syntax {
        /// The parser's error (with line and column).
        error: SyntaxError,
    },
    /// Elements nest deeper than [`MAX_XML_DEPTH`].
    #[error("XML element <{name}> nests deeper than {MAX_XML_DEPTH} levels")]
    TooDeep {
        /// The name of the first element too deep.
        name: String,
    },
    /// The root element is not `<WIM>`.
    #[error("XML root element is <{name}>, not <WIM>")]
    Root {
        /// Its name.
        name: String,
    },
}

/// Where and why the XML parser stopped: its message (which names the position) and the
/// 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    message: String,
    line: u32,
    column: u32,
}

impl SyntaxError {
    /// The parser's description of the problem, ending with the position (`line:column`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The 1-based line of the problem.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The 1-based column (in characters) of the problem.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl SyntaxError {
    /// Not a `From` impl: that would put `roxmltree` in the public API.
    fn new(e: &roxmltree::Error) -> Self {
        let pos = e.pos();
        SyntaxError {
            message: alloc::string::ToString::to_string(e),
            line: pos.row,
            column: pos.col,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A node of the XML tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlNode {
    /// An element.
    Element(Element),
    /// Text (entities decoded).
    Text(String),
}

/// An XML element with everything it contains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// The tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// Child nodes in document order.
    pub children: Vec<XmlNode>,
}

impl Element {
    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            XmlNode::Element(e) => Some(e),
            XmlNode::Text(_) => None,
        })
    }

    /// The attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The concatenated text directly inside, trimmed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            if let XmlNode::Text(t) = c {
                s.push_str(t);
            }
        }
        String::from(s.trim())
    }

    /// Text of the element at a `/`-separated path of child names.
    pub fn text_at(&self, path: &str) -> Option<String> {
        let mut e = self;
        for p in path.split('/') {
            e = e.child(p)?;
        }
        Some(e.text())
    }

    /// Writes the element as XML text (escaped, no declaration).
    pub fn write_to(&self, out: &mut impl Write) -> fmt::Result {
        write!(out, "<{}", self.name)?;
        for (n, v) in &self.attributes {
            write!(out, " {}=\"", n)?;
            escape(out, v, true)?;
            out.write_char('"')?;
        }
        if self.children.is_empty() {
            return out.write_str("/>");
        }
        out.write_char('>')?;
        for c in &self.children {
            match c {
                XmlNode::Element(e) => e.write_to(out)?,
                XmlNode::Text(t) => escape(out, t, false)?,
            }
        }
        write!(out, "</{}>", self.name)
    }
}

fn escape(out: &mut impl Write, s: &str, attr: bool) -> fmt::Result {
    for c in s.chars() {
        match c {
            '<' => out.write_str("&lt;")?,
            '>' => out.write_str("&gt;")?,
            '&' => out.write_str("&amp;")?,
            '"' if attr => out.write_str("&quot;")?,
            '\r' => out.write_str("&#13;")?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// The decoded XML document: the `<WIM>` element, with its `<IMAGE>` elements indexed, so
/// that [`XmlInfo::image`] does not search the document (which may hold any number of other
/// elements) for each image.
#[derive(Clone, Debug)]
pub struct XmlInfo {
    root: Element,
    /// `None` once [`XmlInfo::root_mut`] has lent the root out, until [`XmlInfo::reindex`].
    index: Option<ImageIndex>,
}

/// Where the `<IMAGE>` elements of a document are.
#[derive(Clone, Debug, Default)]
struct ImageIndex {
    /// Their positions in the root's children, in document order.
    positions: Vec<usize>,
    /// (`INDEX` attribute, 0-based number of the image), sorted, for those with one.
    by_index: Vec<(u32, u32)>,
}

impl ImageIndex {
    fn new(root: &Element) -> ImageIndex {
        let mut index = ImageIndex::default();
        for (at, c) in root.children.iter().enumerate() {
            if let XmlNode::Element(e) = c {
                if e.name == "IMAGE" {
                    let n = index.positions.len() as u32;
                    if let Some(i) = (ImageInfo { element: e }).index() {
                        index.by_index.push((i, n));
                    }
                    index.positions.push(at);
                }
            }
        }
        index.by_index.sort_unstable();
        index
    }

    /// The position in the root's children of the image [`XmlInfo::image`] picks.
    fn find(&self, index: u32) -> Option<usize> {
        self.find_numbered(index).map(|(_, at)| at)
    }

    /// The image [`XmlInfo::image`] picks: its 0-based number among the images and its
    /// position in the root's children.
    fn find_numbered(&self, index: u32) -> Option<(u32, usize)> {
        let at = self.by_index.partition_point(|&(i, _)| i < index);
        let n = match self.by_index.get(at) {
            Some(&(i, n)) if i == index => n,
            _ => index.checked_sub(1)?,
        };
        Some((n, *self.positions.get(n as usize)?))
    }

    /// Records that image number `n` has the `INDEX` `now` instead of `was`.
    fn renumber(&mut self, n: u32, was: Option<u32>, now: Option<u32>) {
        if was == now {
            return;
        }
        if let Some(w) = was {
            if let Ok(k) = self.by_index.binary_search(&(w, n)) {
                self.by_index.remove(k);
            }
        }
        if let Some(i) = now {
            let k = self.by_index.partition_point(|&p| p < (i, n));
            self.by_index.insert(k, (i, n));
        }
    }
}

/// An `<IMAGE>` element of an [`XmlInfo`] borrowed to change ([`XmlInfo::image_mut`]); it
/// dereferences to the element. When it is dropped, the document's image index follows a
/// changed `INDEX` attribute (a renamed element makes the document searched again, as after
/// [`XmlInfo::root_mut`]).
#[derive(Debug)]
pub struct ImageMut<'a> {
    element: &'a mut Element,
    index: &'a mut Option<ImageIndex>,
    /// The image's 0-based number among the images.
    n: u32,
    /// Its `INDEX` when borrowed.
    was: Option<u32>,
}

impl core::ops::Deref for ImageMut<'_> {
    type Target = Element;
    fn deref(&self) -> &Element {
        self.element
    }
}

impl core::ops::DerefMut for ImageMut<'_> {
    fn deref_mut(&mut self) -> &mut Element {
        self.element
    }
}

impl Drop for ImageMut<'_> {
    fn drop(&mut self) {
        if self.element.name != "IMAGE" {
            *self.index = None;
        } else if let Some(ix) = self.index.as_mut() {
            let now = ImageInfo {
                element: self.element,
            }
            .index();
            ix.renumber(self.n, self.was, now);
        }
    }
}

impl PartialEq for XmlInfo {
    fn eq(&self, other: &XmlInfo) -> bool {
        self.root == other.root
    }
}

impl Eq for XmlInfo {}

/// A FILETIME from `<HIGHPART>`/`<LOWPART>` hex halves.
fn filetime(e: &Element) -> Option<u64> {
    let part = |n: &str| -> Option<u64> {
        let t = e.child(n)?.text();
        let t = t.trim_start_matches("0x").trim_start_matches("0X");
        u32::from_str_radix(t, 16).ok().map(u64::from)
    };
    Some(part("HIGHPART")? << 32 | part("LOWPART")?)
}

/// Typed view of one `<IMAGE>` element.
#[derive(Clone, Copy, Debug)]
pub struct ImageInfo<'a> {
    /// The element itself (everything is reachable through it).
    pub element: &'a Element,
}

impl<'a> ImageInfo<'a> {
    fn text(&self, name: &str) -> Option<String> {
        self.element.text_at(name)
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.text(name)?.parse().ok()
    }

    /// `INDEX` attribute (1-based).
    pub fn index(&self) -> Option<u32> {
        self.element.attribute("INDEX")?.parse().ok()
    }
    /// `<NAME>`.
    pub fn name(&self) -> Option<String> {
        self.text("NAME")
    }
    /// `<DESCRIPTION>`.
    pub fn description(&self) -> Option<String> {
        self.text("DESCRIPTION")
    }
    /// `<DISPLAYNAME>`.
    pub fn display_name(&self) -> Option<String> {
        self.text("DISPLAYNAME")
    }
    /// `<DISPLAYDESCRIPTION>`.
    pub fn display_description(&self) -> Option<String> {
        self.text("DISPLAYDESCRIPTION")
    }
    /// `<FLAGS>` (the edition id).
    pub fn flags(&self) -> Option<String> {
        self.text("FLAGS")
    }
    /// `<DIRCOUNT>`.
    pub fn dir_count(&self) -> Option<u64> {
        self.number("DIRCOUNT")
    }
    /// `<FILECOUNT>`.
    pub fn file_count(&self) -> Option<u64> {
        self.number("FILECOUNT")
    }
    /// `<TOTALBYTES>`.
    pub fn total_bytes(&self) -> Option<u64> {
        self.number("TOTALBYTES")
    }
    /// `<HARDLINKBYTES>`.
    pub fn hard_link_bytes(&self) -> Option<u64> {
        self.number("HARDLINKBYTES")
    }
    /// `<CREATIONTIME>` as a FILETIME.
    pub fn creation_time(&self) -> Option<u64> {
        filetime(self.element.child("CREATIONTIME")?)
    }
    /// `<LASTMODIFICATIONTIME>` as a FILETIME.
    pub fn last_modification_time(&self) -> Option<u64> {
        filetime(self.element.child("LASTMODIFICATIONTIME")?)
    }
    /// `<WIMBOOT>` is 1.
    pub fn wimboot(&self) -> bool {
        self.number("WIMBOOT") == Some(1)
    }
    /// `<WINDOWS><ARCH>` (0 x86, 5 ARM, 6 IA-64, 9 x64, 12 ARM64).
    pub fn arch(&self) -> Option<u64> {
        self.number("WINDOWS/ARCH")
    }
    /// `<WINDOWS><PRODUCTNAME>`.
    pub fn product_name(&self) -> Option<String> {
        self.text("WINDOWS/PRODUCTNAME")
    }
    /// `<WINDOWS><EDITIONID>`.
    pub fn edition_id(&self) -> Option<String> {
        self.text("WINDOWS/EDITIONID")
    }
    /// `<WINDOWS><VERSION>` as (major, minor, build, service-pack build).
    pub fn version(&self) -> Option<(u64, u64, u64, u64)> {
        let v = |n: &str| -> Option<u64> {
            self.element
                .child("WINDOWS")?
                .child("VERSION")?
                .text_at(n)?
                .parse()
                .ok()
        };
        Some((
            v("MAJOR")?,
            v("MINOR")?,
            v("BUILD")?,
            v("SPBUILD").unwrap_or(0),
        ))
    }
}

impl XmlInfo {
    /// Decodes UTF-16LE bytes (a leading byte-order mark is skipped) and parses them.
    pub fn parse(bytes: &[u8]) -> Result<XmlInfo, XmlError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(XmlError::Encoding {
                offset: bytes.len() - 1,
            });
        }
        let units = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]));
        let mut text = String::with_capacity(bytes.len() / 2);
        for (i, c) in char::decode_utf16(units).enumerate() {
            match c {
                Ok('\u{feff}') if i == 0 => {}
                Ok('\0') => break,
                Ok(c) => text.push(c),
                Err(_) => return Err(XmlError::Encoding { offset: i * 2 }),
            }
        }
        Self::parse_str(&text)
    }

    /// Parses XML text.
    pub fn parse_str(text: &str) -> Result<XmlInfo, XmlError> {
        let doc = roxmltree::Document::parse(text).map_err(|e| XmlError::Syntax {
            error: SyntaxError::new(&e),
        })?;
        let root = convert(doc.root_element())?;
        if root.name != "WIM" {
            return Err(XmlError::Root { name: root.name });
        }
        Ok(XmlInfo::new(root))
    }

    /// A document with this root element (normally `<WIM>`).
    pub fn new(root: Element) -> XmlInfo {
        let index = Some(ImageIndex::new(&root));
        XmlInfo { root, index }
    }

    /// The root element.
    pub fn root(&self) -> &Element {
        &self.root
    }

    /// The root element, to change. [`image`](Self::image) then searches the document each
    /// time, until [`reindex`](Self::reindex).
    pub fn root_mut(&mut self) -> &mut Element {
        self.index = None;
        &mut self.root
    }

    /// Indexes the `<IMAGE>` elements again after [`root_mut`](Self::root_mut).
    pub fn reindex(&mut self) {
        self.index = Some(ImageIndex::new(&self.root));
    }

    /// The `<IMAGE>` [`image`](Self::image) picks, to change: a binary search of the index
    /// (made first if [`root_mut`](Self::root_mut) dropped it), which the change keeps up to
    /// date (see [`ImageMut`]).
    pub fn image_mut(&mut self, index: u32) -> Option<ImageMut<'_>> {
        if self.index.is_none() {
            self.reindex();
        }
        let (n, at) = self.index.as_ref()?.find_numbered(index)?;
        let XmlInfo { root, index: ix } = self;
        let XmlNode::Element(element) = root.children.get_mut(at)? else {
            return None;
        };
        let was = ImageInfo { element }.index();
        Some(ImageMut {
            element,
            index: ix,
            n,
            was,
        })
    }

    /// Adds `image` (an `<IMAGE>` element) after the last `<IMAGE>` (first if there is
    /// none), keeping the index: no search of the document.
    pub fn push_image(&mut self, image: Element) {
        if self.index.is_none() {
            self.reindex();
        }
        let Some(ix) = self.index.as_mut() else {
            return;
        };
        let at = ix.positions.last().map_or(0, |&p| p + 1);
        let indexed = image.name == "IMAGE";
        let now = ImageInfo { element: &image }.index();
        self.root.children.insert(at, XmlNode::Element(image));
        if indexed {
            // Only other elements and text follow: the images keep their positions.
            let n = ix.positions.len() as u32;
            ix.positions.push(at);
            ix.renumber(n, None, now);
        } else {
            self.reindex();
        }
    }

    /// Whether the `<IMAGE>` elements are indexed (tests).
    #[cfg(test)]
    pub(crate) fn is_indexed(&self) -> bool {
        self.index.is_some()
    }

    /// The root element, taken out of the document.
    pub fn into_root(self) -> Element {
        self.root
    }

    /// The `<IMAGE>` elements in document order.
    pub fn images(&self) -> impl Iterator<Item = ImageInfo<'_>> {
        self.root
            .elements()
            .filter(|e| e.name == "IMAGE")
            .map(|element| ImageInfo { element })
    }

    /// The `<IMAGE>` whose `INDEX` is `index` (1-based; the first if several are); falls back
    /// to the `index`-th. A binary search of the index made when the document was parsed.
    pub fn image(&self, index: u32) -> Option<ImageInfo<'_>> {
        let Some(ix) = &self.index else {
            return self
                .images()
                .find(|i| i.index() == Some(index))
                .or_else(|| self.images().nth(index.checked_sub(1)? as usize));
        };
        match self.root.children.get(ix.find(index)?)? {
            XmlNode::Element(element) => Some(ImageInfo { element }),
            XmlNode::Text(_) => None,
        }
    }

    /// The document's `<TOTALBYTES>`.
    pub fn total_bytes(&self) -> Option<u64> {
        self.root.text_at("TOTALBYTES")?.parse().ok()
    }

    /// Whether the document marks the file as an encrypted ESD (`<ESD><ENCRYPTED>`).
    pub fn is_encrypted_esd(&self) -> bool {
        self.root
            .child("ESD")
            .and_then(|e| e.child("ENCRYPTED"))
            .is_some()
    }

    /// The document as XML text.
    pub fn to_xml_string(&self) -> String {
        let mut s = String::new();
        let _ = self.root.write_to(&mut s);
        s
    }
}

fn convert(n: roxmltree::Node<'_, '_>) -> Result<Element, XmlError> {
    // Iterative to bound stack use on hostile nesting; the depth is bounded for what
    // recurses over the result.
    let mut stack: Vec<(roxmltree::Node<'_, '_>, Element)> = Vec::new();
    stack.push((n, new_element(n)));
    let mut iters: Vec<roxmltree::Children<'_, '_>> = alloc::vec![n.children()];
    loop {
        let Some(it) = iters.last_mut() else {
            return Ok(Element::default());
        };
        match it.next() {
            Some(c) if c.is_element() => {
                if stack.len() >= MAX_XML_DEPTH {
                    let name = String::from(c.tag_name().name());
                    return Err(XmlError::TooDeep { name });
                }
                stack.push((c, new_element(c)));
                iters.push(c.children());
            }
            Some(c) if c.is_text() => {
                if let Some((_, e)) = stack.last_mut() {
                    e.children
                        .push(XmlNode::Text(String::from(c.text().unwrap_or(""))));
                }
            }
            Some(_) => {}
            None => {
                iters.pop();
                let Some((_, done)) = stack.pop() else {
                    return Ok(Element::default());
                };
                match stack.last_mut() {
                    Some((_, parent)) => parent.children.push(XmlNode::Element(done)),
                    None => return Ok(done),
                }
            }
        }
    }
}

fn new_element(n: roxmltree::Node<'_, '_>) -> Element {
    Element {
        name: String::from(n.tag_name().name()),
        attributes: n
            .attributes()
            .map(|a| (String::from(a.name()), String::from(a.value())))
            .collect(),
        children: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        let mut v = alloc::vec![0xFF, 0xFE];
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |depth: usize| {
            let mut s = String::new();
            s.push_str("<WIM>");
            for _ in 1..depth {
                s.push_str("<A>");
            }
            for _ in 1..depth {
                s.push_str("</A>");
            }
            s.push_str("</WIM>");
            s
        };
        let ok = XmlInfo::parse_str(&nest(MAX_XML_DEPTH)).unwrap();
        assert_eq!(ok.clone(), ok);
        assert_eq!(
            XmlInfo::parse_str(&nest(MAX_XML_DEPTH + 1)),
            Err(XmlError::TooDeep { name: "A".into() })
        );
    }

    #[test]
    fn typed_and_preserved() {
        let doc = "<WIM><TOTALBYTES>123</TOTALBYTES><IMAGE INDEX=\"1\"><NAME>bench &amp; co</NAME>\
            <DIRCOUNT>3</DIRCOUNT><CREATIONTIME><HIGHPART>0x01D9A1B2</HIGHPART>\
            <LOWPART>0x12345678</LOWPART></CREATIONTIME><X a=\"1\">keep</X>\
            <WINDOWS><ARCH>9</ARCH><VERSION><MAJOR>10</MAJOR><MINOR>0</MINOR><BUILD>19041</BUILD></VERSION></WINDOWS>\
            </IMAGE></WIM>";
        let x = XmlInfo::parse(&utf16(doc)).unwrap();
        assert_eq!(x.total_bytes(), Some(123));
        let i = x.image(1).unwrap();
        assert_eq!(i.name().as_deref(), Some("bench & co"));
        assert_eq!(i.dir_count(), Some(3));
        assert_eq!(i.creation_time(), Some(0x01D9A1B2_12345678));
        assert_eq!(i.arch(), Some(9));
        assert_eq!(i.version(), Some((10, 0, 19041, 0)));
        assert_eq!(i.element.child("X").unwrap().attribute("a"), Some("1"));
        let again = XmlInfo::parse_str(&x.to_xml_string()).unwrap();
        assert_eq!(again, x);
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            XmlInfo::parse(&[0xFF]),
            Err(XmlError::Encoding { .. })
        ));
        let Err(XmlError::Syntax { error }) = XmlInfo::parse(&utf16("<WIM>\n  <A></B></WIM>"))
        else {
            panic!("not a syntax error");
        };
        assert_eq!((error.line(), error.column()), (2, 6));
        assert!(error.message().ends_with("2:6"), "{error}");
        assert!(matches!(
            XmlInfo::parse(&utf16("<X/>")),
            Err(XmlError::Root { .. })
        ));
    }

    /// What `image` returned before the index: a search of the document.
    fn searched(x: &XmlInfo, index: u32) -> Option<&Element> {
        x.images()
            .find(|i| i.index() == Some(index))
            .or_else(|| x.images().nth(index.checked_sub(1)? as usize))
            .map(|i| i.element)
    }

    #[test]
    fn image_lookup_matches_a_search() {
        let doc = "<WIM><a/><IMAGE INDEX=\"3\"><NAME>x</NAME></IMAGE>text<IMAGE/>\
            <IMAGE INDEX=\"1\"/><b/><IMAGE INDEX=\"3\"/><IMAGE INDEX=\"junk\"/>\
            <IMAGE INDEX=\"9\"/><TOTALBYTES>1</TOTALBYTES></WIM>";
        let mut x = XmlInfo::parse_str(doc).unwrap();
        for i in 0..12 {
            assert_eq!(x.image(i).map(|i| i.element), searched(&x, i), "image {i}");
        }
        // Changed through root_mut, the document is searched until indexed again.
        x.root_mut().children.insert(
            0,
            XmlNode::Element(Element {
                name: "IMAGE".into(),
                attributes: alloc::vec![("INDEX".into(), "2".into())],
                children: Vec::new(),
            }),
        );
        for _ in 0..2 {
            for i in 0..12 {
                assert_eq!(x.image(i).map(|i| i.element), searched(&x, i), "image {i}");
            }
            x.reindex();
        }
    }

    /// 10,000 images without `INDEX` among 100,000 other elements (wimtool `info` asks for
    /// each image in turn): each lookup searched the whole document. It now reads the
    /// index made at parse time, as an element slipped in behind the index's back shows.
    #[test]
    fn image_lookup_reads_the_index_not_the_document() {
        let mut doc = String::from("<WIM>");
        for _ in 0..10_000 {
            doc.push_str("<IMAGE/>");
        }
        for _ in 0..100_000 {
            doc.push_str("<a/>");
        }
        doc.push_str("</WIM>");
        let mut x = XmlInfo::parse_str(&doc).unwrap();
        for i in 1..=10_000u32 {
            let XmlNode::Element(e) = &x.root.children[i as usize - 1] else {
                panic!("not an element");
            };
            assert!(core::ptr::eq(x.image(i).unwrap().element, e));
        }
        let planted = Element {
            name: "IMAGE".into(),
            attributes: alloc::vec![("INDEX".into(), "7".into())],
            children: Vec::new(),
        };
        x.root.children.push(XmlNode::Element(planted.clone()));
        assert_eq!(searched(&x, 7), Some(&planted));
        assert_eq!(
            x.image(7).unwrap().element,
            &Element {
                name: "IMAGE".into(),
                ..Element::default()
            }
        );
        x.reindex();
        assert_eq!(x.image(7).unwrap().element, &planted);
    }

    fn image(index: Option<u32>) -> Element {
        Element {
            name: "IMAGE".into(),
            attributes: index
                .map(|i| ("INDEX".into(), alloc::format!("{i}")))
                .into_iter()
                .collect(),
            children: Vec::new(),
        }
    }

    fn element_at(x: &XmlInfo, at: usize) -> &Element {
        match &x.root.children[at] {
            XmlNode::Element(e) => e,
            XmlNode::Text(_) => panic!("text at {at}"),
        }
    }

    /// A writer adds each image with `push_image` and then changes it with `image_mut`
    /// (export, in-place replacement): both searched the whole document (and `push_image`
    /// dropped the index), so rebuilding a file of n images cost O(n^2). Both now keep the
    /// index and read it, as an `INDEX` changed behind the index's back shows; an `INDEX`
    /// changed through `image_mut` is followed, and every lookup matches a search.
    #[test]
    fn push_image_and_image_mut_keep_the_index() {
        let mut x = XmlInfo::parse_str("<WIM><a/>text<TOTALBYTES>1</TOTALBYTES></WIM>").unwrap();
        for i in 1..=2000u32 {
            x.push_image(image((i % 7 != 0).then_some(i)));
            assert!(x.is_indexed(), "dropped at image {i}");
        }
        assert_eq!(x.root.children.len(), 2003);
        for i in [1, 6, 7, 1999, 2000] {
            let e = element_at(&x, i as usize - 1) as *const Element;
            assert!(core::ptr::eq(&*x.image_mut(i).unwrap(), e), "image {i}");
        }
        // Image 5 claims INDEX 7 behind the index's back: a search finds it for 7, the
        // index still names the seventh.
        let XmlNode::Element(e) = &mut x.root.children[4] else {
            panic!("not an element");
        };
        e.attributes[0].1 = "7".into();
        let planted = element_at(&x, 4).clone();
        assert_eq!(searched(&x, 7), Some(&planted));
        let seventh = element_at(&x, 6) as *const Element;
        assert!(core::ptr::eq(&*x.image_mut(7).unwrap(), seventh));
        x.reindex();
        assert_eq!(&*x.image_mut(7).unwrap(), &planted);
        // Changed through image_mut: followed.
        x.image_mut(3).unwrap().attributes[0].1 = "4000".into();
        x.image_mut(14)
            .unwrap()
            .attributes
            .push(("INDEX".into(), "3".into()));
        x.image_mut(20).unwrap().attributes.clear();
        for i in 0..2100 {
            assert_eq!(x.image(i).map(|i| i.element), searched(&x, i), "image {i}");
        }
        // A renamed element is no image: the document is searched until indexed again.
        x.image_mut(10).unwrap().name = "NOT-AN-IMAGE".into();
        assert!(!x.is_indexed());
        for i in 0..2100 {
            assert_eq!(x.image(i).map(|i| i.element), searched(&x, i), "image {i}");
        }
        x.push_image(image(Some(2001)));
        assert!(x.is_indexed());
        assert_eq!(x.image(2001).unwrap().element, &image(Some(2001)));
        assert!(matches!(&x.root.children[2000], XmlNode::Element(e) if e == &image(Some(2001))));
    }
}
