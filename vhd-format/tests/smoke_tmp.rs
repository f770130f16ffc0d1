use vhd_format::*;
use vhd_format::defs::*;

#[test]
fn chain_smoke() {
    let o = CreateOptions::new(8 << 20).block_size(1 << 20);
    let mut p = create_dynamic(MemStorage::new(), &o).unwrap();
    p.write_at(100, &[0xAA; 2000]).unwrap();
    let mut buf = vec![0u8; 3000];
    p.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf[100..2100], &[0xAA; 2000][..]);
    assert_eq!(&buf[..100], &[0; 100][..]);
    let bytes = p.into_storage();
    let p = Vhd::open(bytes, OpenOptions::new()).unwrap();
    let id = p.identity().unwrap();
    let link = ParentLink { unique_id: id.unique_id, timestamp: id.timestamp, name: "p.vhd".into(), relative_path: Some(".\\p.vhd".into()), absolute_path: None };
    let mut c = create_differencing(MemStorage::new(), Box::new(p), &link, &CreateOptions::new(0)).unwrap();
    c.write_at(600, &[0; 10]).unwrap();
    c.write_at(1 << 20 | 7, &[5; 3]).unwrap();
    let mut buf = vec![0u8; 3000];
    c.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf[100..600], &[0xAA; 500][..]);
    assert_eq!(&buf[600..610], &[0; 10][..]);
    assert_eq!(&buf[610..2100], &[0xAA; 1490][..]);
    let mut b2 = [9u8; 12];
    c.read_at((1 << 20) + 4, &mut b2).unwrap();
    assert_eq!(b2, [0,0,0,5,5,5,0,0,0,0,0,0]);
    assert_eq!(c.allocated_blocks(), 1);
    let s = c.into_storage();
    let (f, h) = Vhd::probe(&s).unwrap();
    assert_eq!(f.disk_type(), DiskType::DIFFERENCING);
    assert_eq!(h.unwrap().parent_unique_id(), id.unique_id);
}
