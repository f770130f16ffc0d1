//! Crafted images that once made the reader or apply abort, overflow or misbehave: each is
//! built here with the crate's own writer (then patched where a field must lie) and must now
//! fail with a typed error, or work.

mod forge;
mod wimlib_support;

use std::ops::ControlFlow;
use std::sync::Arc;

use forge::{blob_entries, replace_blob_table};
use wim_image::apply::{apply, ApplyError, ApplyOptions};
use wim_image::codec::Codec;
use wim_image::defs::{FileAttributes, ReparseTag};
use wim_image::dentry::ReparseInfo;
use wim_image::reparse::{ReparseError, MAX_REPARSE_DATA};
use wim_image::verify::Problem;
use wim_image::write::capture::{
    capture_image, symlink_reparse_data, CaptureError, CaptureOptions,
};
use wim_image::write::export::export_image;
use wim_image::write::image::{Content, Inode, NewImage};
use wim_image::write::{ImageProps, NoBlobs, WimWriter, WriteError, WriteOptions};
use wim_image::xml::XmlError;
use wim_image::{ImageError, IoError, OpenError, ReadAt, ReadError, Wim};
use wimlib_support::Scratch;

/// Writes one image to memory.
fn write(img: &mut NewImage, opts: &WriteOptions) -> Vec<u8> {
    let mut w = WimWriter::create(Vec::new(), opts).unwrap();
    w.add_image(img, &ImageProps::default(), &mut NoBlobs)
        .unwrap();
    w.finish().unwrap()
}

/// A blob-table entry: resource header (`flags` in the size's top byte), part 1, one
/// reference.
fn entry(size: u64, flags: u8, offset: u64, usize_: u64, hash: &[u8; 20]) -> [u8; 50] {
    let mut e = [0u8; 50];
    e[..8].copy_from_slice(&size.to_le_bytes());
    e[7] = flags;
    e[8..16].copy_from_slice(&offset.to_le_bytes());
    e[16..24].copy_from_slice(&usize_.to_le_bytes());
    e[24..26].copy_from_slice(&1u16.to_le_bytes());
    e[26..30].copy_from_slice(&1u32.to_le_bytes());
    e[30..].copy_from_slice(hash);
    e
}

/// Moves the blob with `hash` into a forged solid resource appended to `wim`: a 16-byte
/// solid header claiming `chunks` LZMS chunks of 64 MiB, its table of compressed sizes and
/// one byte per chunk; in the new blob table the blob spans all of it.
fn forge_solid_blob(wim: &mut Vec<u8>, hash: &[u8; 20], chunks: u64) -> u64 {
    const CHUNK: u64 = 64 << 20;
    let all = blob_entries(wim);
    let mut table: Vec<[u8; 50]> = all.iter().filter(|e| &e[30..] != hash).copied().collect();
    assert_eq!(table.len() + 1, all.len(), "the blob was in the table once");
    assert_eq!(
        table.last().unwrap()[7] & 0x10,
        0,
        "the table ends with a non-solid entry"
    );
    let size = chunks * CHUNK;
    let res_at = wim.len() as u64;
    wim.extend_from_slice(&size.to_le_bytes());
    wim.extend_from_slice(&(CHUNK as u32).to_le_bytes());
    wim.extend_from_slice(&3u32.to_le_bytes()); // LZMS
    for _ in 0..chunks {
        wim.extend_from_slice(&1u32.to_le_bytes());
    }
    wim.resize(wim.len() + chunks as usize, 0);
    let res_len = wim.len() as u64 - res_at;
    // Solid and compressed; the resource's entry has the magic size 2^32 and no hash.
    table.push(entry(res_len, 0x14, res_at, 1 << 32, &[0; 20]));
    table.push(entry(size, 0x14, 0, 0, hash));
    replace_blob_table(wim, &table);
    size
}

/// A root with one symbolic link `link` to `target`.
fn symlink_image(target: &str) -> NewImage {
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 2, 3));
    let data = symlink_reparse_data(target).unwrap();
    let mut inode = Inode::new(FileAttributes::REPARSE_POINT, 4, 5, 6);
    inode.reparse = Some(ReparseInfo {
        tag: ReparseTag::SYMLINK,
        reserved: 0,
        flags: 0,
    });
    inode.reparse_data = img.add_stream(data.len() as u64, Content::Bytes(Arc::from(data)));
    let inode = img.add_inode(inode);
    img.add_dentry(0, String::from("link"), inode);
    img
}

/// A symlink whose reparse blob claims 128 GiB: apply once reserved that much memory for
/// it up front and aborted; now it is refused before anything is read.
#[test]
fn huge_reparse_blob_is_refused_before_allocating() {
    // Solid, as the audit's image: an uncompressed blob's size must match its resource.
    for solid in [Some((Codec::Lzms, 32768)), Some((Codec::Xpress, 4096))] {
        let opts = WriteOptions {
            solid,
            ..WriteOptions::default()
        };
        let mut wim = write(&mut symlink_image("a/b"), &opts);
        let hash = {
            let w = Wim::open(wim.as_slice()).unwrap();
            let tree = w.image(1).unwrap();
            let id = tree.lookup("/link").unwrap();
            tree.node(id).dentry.reparse_data.unwrap()
        };
        let mut huge = wim.clone();
        let claimed = forge_solid_blob(&mut huge, &hash, 2048);
        assert_eq!(claimed, 128 << 30);
        assert!(huge.len() < 64 << 10, "{}", huge.len());
        let w = Wim::open(huge.as_slice()).unwrap();
        let out = Scratch::new(&format!("huge-reparse-{:?}", solid.map(|s| s.1)));
        let err = apply(&w, 1, &out.path("t"), &ApplyOptions::default(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                ApplyError::Reparse {
                    source: ReparseError::TooLarge { size },
                    ..
                } if size == claimed
            ),
            "{err:?}"
        );
        // 64 MiB is refused the same way (it never exists on a file system).
        let claimed = forge_solid_blob(&mut wim, &hash, 1);
        assert!(claimed > MAX_REPARSE_DATA as u64);
        let w = Wim::open(wim.as_slice()).unwrap();
        let err = apply(&w, 1, &out.path("u"), &ApplyOptions::default(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                ApplyError::Reparse {
                    source: ReparseError::TooLarge { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

/// Two blobs claiming 2^63 bytes each: `verify` summed their sizes unchecked and panicked
/// (overflow, debug builds); now the total saturates and both blobs are reported.
#[test]
fn verify_survives_sizes_that_overflow_a_sum() {
    let opts = WriteOptions {
        compression: Some(Codec::Xpress),
        ..WriteOptions::default()
    };
    let mut wim = write(&mut symlink_image("a"), &opts);
    let at = wim.len() as u64;
    wim.resize(wim.len() + 32, 0);
    let mut table = blob_entries(&wim);
    for i in 1..=2u8 {
        // Each its own 16 bytes: entries naming the same resource are refused at open.
        table.push(entry(16, 0x04, at + 16 * (i as u64 - 1), 1 << 63, &[i; 20]));
    }
    replace_blob_table(&mut wim, &table);
    let w = Wim::open(wim.as_slice()).unwrap();
    let mut last = None;
    let report = w.verify(&mut |p| last = Some(p));
    assert_eq!(report.bytes, u64::MAX);
    assert_eq!(last.unwrap().total, u64::MAX);
    let bad = report
        .problems
        .iter()
        .filter(|p| matches!(p, Problem::Blob { hash, .. } if hash[0] == hash[19] && hash[0] <= 2))
        .count();
    assert_eq!(bad, 2, "{:?}", report.problems);
}

/// 200,000 nested elements (2.8 MB of XML, far under `MAX_XML_SIZE`): the WIM opened, and
/// dropping the owned XML tree overflowed the stack. Now open refuses it with a typed error.
#[test]
fn deeply_nested_xml_is_refused_at_open() {
    let mut wim = write(&mut symlink_image("a"), &WriteOptions::default());
    let depth = 200_000;
    let mut xml = String::from("<WIM>");
    xml.push_str(&"<a>".repeat(depth));
    xml.push_str(&"</a>".repeat(depth));
    xml.push_str("</WIM>");
    let at = wim.len() as u64;
    wim.extend_from_slice(&[0xFF, 0xFE]);
    wim.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
    let len = wim.len() as u64 - at;
    // The XML's resource header (uncompressed, no flags) at 0x48.
    wim[0x48..0x50].copy_from_slice(&len.to_le_bytes());
    wim[0x50..0x58].copy_from_slice(&at.to_le_bytes());
    wim[0x58..0x60].copy_from_slice(&len.to_le_bytes());
    match Wim::open(wim.as_slice()) {
        Err(OpenError::Xml(XmlError::TooDeep { name })) if name == "a" => {}
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("deep XML accepted"),
    }
}

/// A WIM file in a scratch directory, opened for reading and writing.
fn wim_file(s: &Scratch) -> (std::path::PathBuf, Vec<u8>, std::fs::File) {
    let bytes = write(&mut symlink_image("a"), &WriteOptions::default());
    let path = s.path("x.wim");
    std::fs::write(&path, &bytes).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    (path, bytes, f)
}

/// `wimtool append /nonexistent x.wim` left WRITE_IN_PROGRESS (0x40) set in the header
/// for good: the flag was written when the file was opened for appending. Now it is
/// written with the first change, and a source that cannot be scanned changes nothing.
#[test]
fn failed_append_before_any_write_leaves_the_file_alone() {
    let s = Scratch::new("append-early");
    let (path, before, f) = wim_file(&s);
    let mut w = WimWriter::append(f, &WriteOptions::default()).unwrap();
    let err = capture_image(
        &mut w,
        &s.path("does-not-exist"),
        &ImageProps::default(),
        &CaptureOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, CaptureError::Io { .. }), "{err:?}");
    drop(w);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A failure after the flag is set (a file of the image vanished while its data were being
/// written) restores the header and the file's length, returns the original error, and the
/// writer refuses to go on.
#[test]
fn failed_append_after_the_flag_restores_the_file() {
    let s = Scratch::new("append-late");
    let (path, before, f) = wim_file(&s);
    let mut w = WimWriter::append(f, &WriteOptions::default()).unwrap();
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 2, 3));
    for (name, content, size) in [
        (
            "big",
            Content::Bytes(Arc::from(vec![7u8; 300_000])),
            300_000,
        ),
        ("gone", Content::File(s.path("gone")), 10),
    ] {
        let mut inode = Inode::new(FileAttributes::NORMAL, 1, 2, 3);
        inode.data = img.add_stream(size, content);
        let inode = img.add_inode(inode);
        img.add_dentry(0, String::from(name), inode);
    }
    let err = w
        .add_image(&mut img, &ImageProps::default(), &mut NoBlobs)
        .unwrap_err();
    assert!(matches!(err, WriteError::Source { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let again = w.add_image(
        &mut symlink_image("b"),
        &ImageProps::default(),
        &mut NoBlobs,
    );
    assert!(matches!(again, Err(WriteError::RolledBack)), "{again:?}");
    assert!(matches!(w.finish(), Err(WriteError::RolledBack)));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    Wim::open(before.as_slice()).unwrap().image(1).unwrap();
}

/// A source as large as some file systems allow (2^62 bytes): `data`, then zeros (a sparse
/// file). Tables and resources may claim sizes up to that and still lie inside the file.
struct Sparse(Vec<u8>);

impl ReadAt for Sparse {
    fn size(&self) -> u64 {
        1 << 62
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size())
        {
            return Err(IoError::Eof {
                offset,
                len: buf.len(),
                size: self.size(),
            });
        }
        buf.fill(0);
        if let Some(have) = usize::try_from(offset).ok().and_then(|o| self.0.get(o..)) {
            let n = have.len().min(buf.len());
            buf[..n].copy_from_slice(&have[..n]);
        }
        Ok(())
    }
}

/// A root with one file `f` holding `data`.
fn file_image(data: &[u8]) -> NewImage {
    let mut img = NewImage::new(Inode::new(FileAttributes::DIRECTORY, 1, 2, 3));
    let mut f = Inode::new(FileAttributes::NORMAL, 4, 5, 6);
    f.data = img.add_stream(data.len() as u64, Content::Bytes(Arc::from(data)));
    let f = img.add_inode(f);
    img.add_dentry(0, String::from("f"), f);
    img
}

/// Sizes only memory can refuse, all inside a (sparse) file of 2^62 bytes: a blob table and
/// a metadata resource of 2^55 bytes (the largest stored size a resource header holds is
/// 2^56 - 1), the chunk table of a blob claiming 2^60 bytes, and that blob recompressed by
/// an export. Each buffer was allocated infallibly and the process aborted; now each is a
/// typed error naming the size, a read error of the source where the source claims it.
#[test]
fn sizes_beyond_memory_are_typed_errors() {
    const STORED: u64 = 1 << 55;
    const FAR: u64 = 1 << 61;
    let opts = WriteOptions {
        compression: Some(Codec::Xpress),
        threads: 1,
        ..WriteOptions::default()
    };
    let wim = write(&mut file_image(b"data"), &opts);
    let data = {
        let w = Wim::open(wim.as_slice()).unwrap();
        let tree = w.image(1).unwrap();
        tree.node(tree.lookup("/f").unwrap()).dentry.data.unwrap()
    };

    // The blob table.
    let mut table_wim = wim.clone();
    let flags = table_wim[0x37];
    table_wim[0x30..0x38].copy_from_slice(&STORED.to_le_bytes());
    table_wim[0x37] = flags;
    table_wim[0x38..0x40].copy_from_slice(&FAR.to_le_bytes());
    table_wim[0x40..0x48].copy_from_slice(&STORED.to_le_bytes());
    match Wim::open(Sparse(table_wim)) {
        Err(OpenError::OutOfMemory { what, source, .. }) => {
            assert_eq!((what, source.bytes), ("blob table", STORED));
        }
        r => panic!("{:?}", r.map(|_| ())),
    }

    // The metadata resource (uncompressed, so nothing but its size is wanted).
    let mut meta_wim = wim.clone();
    let table: Vec<[u8; 50]> = blob_entries(&meta_wim)
        .into_iter()
        .map(|e| {
            if e[7] & 0x02 != 0 {
                entry(STORED, 0x02, FAR, STORED, e[30..].try_into().unwrap())
            } else {
                e
            }
        })
        .collect();
    replace_blob_table(&mut meta_wim, &table);
    let w = Wim::open(Sparse(meta_wim)).unwrap();
    match w.image(1) {
        Err(ImageError::Read(ReadError::OutOfMemory(e))) => assert_eq!(e.bytes, STORED),
        // A 32-bit target cannot even address it.
        Err(ImageError::TooLarge { size }) if usize::BITS < 64 => {
            assert_eq!(size, STORED);
        }
        r => panic!("{:?}", r.map(|_| ())),
    }

    // The data blob: compressed, 2^60 bytes in 32 KiB chunks, a chunk table of 2^45 - 1
    // eight-byte entries.
    let mut data_wim = wim.clone();
    let table: Vec<[u8; 50]> = blob_entries(&data_wim)
        .into_iter()
        .map(|e| {
            if e[30..] == data {
                entry(STORED, 0x04, FAR, 1 << 60, &data)
            } else {
                e
            }
        })
        .collect();
    replace_blob_table(&mut data_wim, &table);
    let w = Wim::open(Sparse(data_wim)).unwrap();
    let blob = w.blob(&data).unwrap();
    match w.reader().read_at(blob, 0, &mut [0u8; 1]) {
        Err(ReadError::OutOfMemory(e)) => assert_eq!(e.bytes, ((1 << 45) - 1) * 8),
        r => panic!("{r:?}"),
    }
    // Exported with another codec, it is recompressed: reading it fails the same way,
    // blamed on the source (wimtool: exit 2 naming it). The writer used to reserve its own
    // chunk offsets for the claimed size first and fail there, an out-of-memory error of
    // the output (wimtool: exit 3 naming the destination).
    let lzx = WriteOptions {
        compression: Some(Codec::Lzx),
        threads: 1,
        ..WriteOptions::default()
    };
    let mut out = WimWriter::create(Vec::new(), &lzx).unwrap();
    match export_image(&w, 1, &mut out, None) {
        Err(WriteError::Read(ReadError::OutOfMemory(e))) => {
            assert_eq!(e.bytes, ((1 << 45) - 1) * 8)
        }
        r => panic!("{r:?}"),
    }
}

/// A source whose reads fail inside one byte range (a bad sector), as an I/O error.
struct BadSector<'a> {
    data: &'a [u8],
    bad: std::ops::Range<u64>,
}

impl ReadAt for BadSector<'_> {
    fn size(&self) -> u64 {
        self.data.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoError> {
        if offset < self.bad.end && offset + buf.len() as u64 > self.bad.start {
            return Err(IoError::Os {
                offset,
                source: std::io::Error::other("bad sector"),
            });
        }
        self.data.read_exact_at(buf, offset)
    }
}

/// An integrity table that cannot be read is an I/O error, in `integrity_table` and in
/// `verify`'s report; it was reported as a table "implausibly large or misplaced".
#[test]
fn an_unreadable_integrity_table_is_an_io_error() {
    let opts = WriteOptions {
        integrity: true,
        ..WriteOptions::default()
    };
    let wim = write(&mut file_image(b"hello"), &opts);
    let t = Wim::open(wim.as_slice()).unwrap().header().integrity;
    assert!(t.size_in_wim > 0, "the image has an integrity table");
    let at = t.offset;
    let src = BadSector {
        data: &wim,
        bad: at..at + 1,
    };
    let w = Wim::open(src).unwrap();
    let e = w.integrity_table().unwrap_err();
    assert!(
        matches!(e, ImageError::Read(ReadError::Io(IoError::Os { .. }))),
        "{e:?}"
    );
    let report = w.verify(&mut |_| {});
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            Problem::IntegrityTable(ImageError::Read(ReadError::Io(_)))
        )),
        "{:?}",
        report.problems
    );
}
