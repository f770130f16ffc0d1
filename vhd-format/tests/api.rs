//! The API as a downstream user meets it: options, sharing a disk between threads, getting a
//! parent back out of its child, naming every public type, caller-defined storage errors,
//! error messages that name their file.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vhd_format::defs::{DiskGeometry, Footer, Uuid, VhdTime};
use vhd_format::ops::{self, NoProgress};
use vhd_format::{
    create_differencing, create_dynamic, parent_link, CreateOptions, Disk, IoError, MemStorage,
    OpenError, OpenOptions, ParentDisk, ParentPolicy, RawDisk, SnapshotError, Storage, Vhd,
};

fn opts(seed: u8) -> CreateOptions {
    CreateOptions::new(8 << 20)
        .block_size(1 << 20)
        .unique_id(Uuid([seed; 16]))
        .timestamp(VhdTime(1000 + u32::from(seed)))
}

/// A shared disk is the point of `Disk::read_at(&self)`: these must hold for the storages
/// this crate provides, and for a child that owns a parent.
#[test]
fn vhd_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Vhd<std::fs::File>>();
    send_sync::<Vhd<&std::fs::File>>();
    send_sync::<Vhd<MemStorage>>();
    send_sync::<Box<dyn ParentDisk>>();
    send_sync::<Arc<Vhd<std::fs::File>>>();
}

#[test]
fn io_threads_share_one_disk_behind_an_arc() {
    let dir = common::TempDir::new("api-arc");
    let path = dir.join("d.vhd");
    let mut disk = create_dynamic(common::create_file(&path), &opts(1)).unwrap();
    let data = common::pattern(1, 4 << 20);
    disk.write_at(1 << 20, &data).unwrap();
    drop(disk);
    let file = std::fs::File::open(&path).unwrap();
    let disk = Arc::new(Vhd::open(file, OpenOptions::new()).unwrap());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let disk = Arc::clone(&disk);
            let data = &data;
            s.spawn(move || {
                for i in 0..32u64 {
                    let at = ((t * 32 + i) * 32) << 10;
                    let mut buf = vec![0u8; 32 << 10];
                    disk.read_at((1 << 20) + at, &mut buf).unwrap();
                    assert_eq!(&buf[..], &data[at as usize..at as usize + buf.len()]);
                }
            });
        }
    });
}

/// Counts `flush` calls: what barriers add.
#[derive(Debug)]
struct Flushes<'a> {
    inner: MemStorage,
    count: &'a AtomicU64,
}

impl Storage for Flushes<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.inner.write_at(offset, buf)
    }
    fn len(&self) -> Result<u64, IoError> {
        self.inner.len()
    }
    fn set_len(&mut self, len: u64) -> Result<(), IoError> {
        self.inner.set_len(len)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.flush()
    }
}

/// Flushes issued by one write that allocates a block, opened with `options`.
fn flushes_of_an_allocation(options: OpenOptions) -> u64 {
    let base = create_dynamic(MemStorage::new(), &opts(2)).unwrap();
    let count = AtomicU64::new(0);
    let storage = Flushes {
        inner: base.into_storage(),
        count: &count,
    };
    let mut disk = Vhd::open(storage, options).unwrap();
    disk.write_at(3 << 20, b"needs a block").unwrap();
    count.load(Ordering::Relaxed)
}

#[test]
fn default_options_are_new_with_barriers_on() {
    assert_eq!(OpenOptions::default(), OpenOptions::new());
    let new = flushes_of_an_allocation(OpenOptions::new().writable(true));
    let default = flushes_of_an_allocation(OpenOptions::default().writable(true));
    let off = flushes_of_an_allocation(OpenOptions::new().writable(true).barriers(false));
    assert!(
        new > off,
        "barriers add flushes ({new} with, {off} without)"
    );
    assert_eq!(default, new, "OpenOptions::default() keeps the barriers");
}

/// `Disk::flush` reaches the storage; `Debug` says what the disk is.
#[test]
fn flush_reaches_the_storage_and_debug_describes_the_disk() {
    let base = create_dynamic(MemStorage::new(), &opts(5)).unwrap();
    let count = AtomicU64::new(0);
    let storage = Flushes {
        inner: base.into_storage(),
        count: &count,
    };
    let mut disk = Vhd::open(storage, OpenOptions::new().writable(true)).unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 0);
    Disk::flush(&mut disk).unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 1);
    assert_eq!(
        format!("{disk:?}"),
        "Vhd { disk_type: DYNAMIC, size: 8388608, writable: true, has_parent: false, \
         warnings: [], .. }"
    );
}

#[test]
fn one_options_value_opens_two_disks() {
    let options = OpenOptions::new().writable(true);
    let a = create_dynamic(MemStorage::new(), &opts(3)).unwrap();
    let b = create_dynamic(MemStorage::new(), &opts(4)).unwrap();
    let a = Vhd::open(a.into_storage(), options).unwrap();
    let b = Vhd::open(b.into_storage(), options).unwrap();
    assert!(a.is_writable() && b.is_writable());
}

#[test]
fn merged_parent_comes_back_by_its_type() {
    let mut base = create_dynamic(MemStorage::new(), &opts(5)).unwrap();
    base.write_at(0, b"base base base").unwrap();
    base.write_at(5 << 20, &[7u8; 4096]).unwrap();
    let link = common::link_to(&base);
    let mut child =
        create_differencing(MemStorage::new(), Box::new(base), &link, &opts(6)).unwrap();
    child.write_at(5, b"child").unwrap();
    child.write_at(7 << 20, &[9u8; 1000]).unwrap();
    let expected = common::read_all(&child, 1 << 20);

    // Borrowed, while the child lives.
    let parent = child.parent().unwrap();
    assert!(parent.downcast_ref::<Vhd<MemStorage>>().is_some());
    assert!(parent.downcast_ref::<RawDisk<MemStorage>>().is_none());

    ops::merge_into_parent(&mut child, &mut NoProgress).unwrap();
    let (_, parent) = child.into_parts();
    let mut parent = parent.unwrap();
    assert!(parent.downcast_ref::<Vhd<MemStorage>>().is_some());
    assert!(parent.downcast_mut::<Vhd<MemStorage>>().is_some());
    // Asking for the wrong type gives the parent back unharmed.
    let parent = parent.downcast::<RawDisk<MemStorage>>().unwrap_err();
    let parent: Box<Vhd<MemStorage>> = parent.downcast().unwrap();
    assert_eq!(parent.disk_type(), vhd_format::defs::DiskType::DYNAMIC);
    // The merged parent's bytes: a dynamic disk that reads as the child did.
    let bytes = parent.into_storage().into_vec();
    let reopened = Vhd::open(MemStorage::from_vec(bytes), OpenOptions::new()).unwrap();
    assert!(ops::check(reopened.storage()).unwrap().is_clean());
    common::assert_same(
        "merged parent",
        &common::read_all(&reopened, 1 << 20),
        &expected,
    );
}

#[test]
fn disk_geometry_can_be_named() {
    fn raw_chs(f: &Footer) -> DiskGeometry {
        f.disk_geometry
    }
    let disk = create_dynamic(MemStorage::new(), &opts(7)).unwrap();
    let g = raw_chs(disk.footer());
    assert_eq!(
        vhd_format::defs::Geometry::from(g),
        disk.footer().geometry()
    );
}

/// A caller's own device that fails with its own status code.
#[derive(Debug)]
struct FailingDevice;

impl Storage for FailingDevice {
    fn read_at(&self, offset: u64, _: &mut [u8]) -> Result<(), IoError> {
        Err(IoError::Device {
            offset,
            code: 0x281,
            reason: "unrecovered read error",
        })
    }
    fn write_at(&mut self, offset: u64, _: &[u8]) -> Result<(), IoError> {
        Err(IoError::Device {
            offset,
            code: 0x2,
            reason: "write fault",
        })
    }
    fn len(&self) -> Result<u64, IoError> {
        Ok(1 << 20)
    }
    fn set_len(&mut self, _: u64) -> Result<(), IoError> {
        Err(IoError::ReadOnly)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

#[test]
fn a_device_error_reaches_the_caller_with_its_code() {
    let err = Vhd::open(FailingDevice, OpenOptions::new()).unwrap_err();
    let OpenError::Io(IoError::Device { offset, code, .. }) = &err else {
        panic!("expected a device error, got {err:?}");
    };
    assert_eq!((*offset, *code), ((1 << 20) - 512, 0x281));
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(
        source,
        "device error at offset 1048064: unrecovered read error (code 0x281)"
    );
}

#[test]
fn open_path_names_the_missing_file() {
    let dir = common::TempDir::new("api-missing");
    let path = dir.join("missing.vhd");
    let err = Vhd::open_path(&path, OpenOptions::new(), &ParentPolicy::default()).unwrap_err();
    let OpenError::File {
        path: named,
        source,
    } = &err
    else {
        panic!("expected OpenError::File, got {err:?}");
    };
    assert_eq!(named, &path);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn a_borrowed_file_is_storage() {
    let dir = common::TempDir::new("api-ref");
    let path = dir.join("d.vhd");
    let file = common::create_file(&path);
    {
        let mut disk = create_dynamic(&file, &opts(8)).unwrap();
        disk.write_at(4 << 20, b"through a shared reference")
            .unwrap();
        disk.flush().unwrap();
    }
    // The file stays with the caller; two read-only disks can borrow it at once.
    let a = Vhd::open(&file, OpenOptions::new()).unwrap();
    let b = Vhd::open(&file, OpenOptions::new()).unwrap();
    let mut buf = [0u8; 26];
    a.read_at(4 << 20, &mut buf).unwrap();
    assert_eq!(&buf, b"through a shared reference");
    b.read_at(4 << 20, &mut buf).unwrap();
    assert_eq!(&buf, b"through a shared reference");
    assert!(ops::check(&file).unwrap().is_clean());
}

#[test]
fn parent_link_to_a_raw_disk_says_it_is_not_a_vhd() {
    let dir = common::TempDir::new("api-link");
    let raw = RawDisk::new(MemStorage::from_vec(vec![0; 1 << 20]), false).unwrap();
    let err = parent_link(&raw, &dir.join("raw.img"), &dir.join("child.vhd")).unwrap_err();
    assert!(
        matches!(err, SnapshotError::ParentNotVhd),
        "expected ParentNotVhd, got {err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the parent is not a VHD: it has no identity a child could record"
    );
}
