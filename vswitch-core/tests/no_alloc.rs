//! The forwarding path does not allocate after warm-up: a counting global allocator watches
//! `Bridge::process` while it learns new addresses, refreshes, moves, floods, tags and untags,
//! mirrors and drops, once the output batch has grown to its working size.

// A global allocator is inherently unsafe; it only forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use vswitch_core::fdb::FdbConfig;
use vswitch_core::frame::MacAddr;
use vswitch_core::port::MirrorMode;
use vswitch_core::vlan::{VlanConfig, VlanSet};
use vswitch_core::{Bridge, BridgeConfig, HashKey, PortConfig, PortId, RxFrame, TxBatch};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if WATCHING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a side
// effect that touches no allocated memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc`/`realloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as for `dealloc`; the new size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn frame(dst: [u8; 6], src: u32, vid: Option<u16>) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[2, 0]);
    f.extend_from_slice(&src.to_be_bytes());
    if let Some(v) = vid {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(60, 0);
    f
}

/// A round of traffic: `n` sources starting at `base`, a mix of broadcast, unknown and known
/// unicast, tagged (trunk) and untagged (access) ingress, with moves between ports.
fn traffic(base: u32, n: u32) -> Vec<(u32, Vec<u8>)> {
    let mut v = Vec::new();
    for i in 0..n {
        let s = base + i;
        let dst = if i % 3 == 0 {
            [0xff; 6]
        } else {
            let d = (base + (i * 7) % n).to_be_bytes();
            [2, 0, d[0], d[1], d[2], d[3]]
        };
        let vid = 10 + (s % 2) as u16;
        v.push((0, frame(dst, s, Some(vid))));
        v.push((1 + s % 2, frame(dst, s, None)));
        v.push((3, frame(dst, s, Some(vid))));
    }
    v
}

#[test]
fn forwarding_does_not_allocate_after_warm_up() {
    let mut cfg = BridgeConfig::new(HashKey::from_seed(1));
    cfg.fdb = FdbConfig {
        capacity: 1 << 16,
        learn_limit: 1 << 16,
        ageing_ms: 300_000,
    };
    let mut br = Bridge::new(cfg);
    let trunk =
        PortConfig::plain().with_vlan(VlanConfig::trunk(VlanSet::from_vids(&[10, 11]), None));
    let mut mirrored = trunk.clone();
    mirrored.mirror = MirrorMode::Source;
    br.add_port(trunk).unwrap();
    br.add_port(PortConfig::plain().with_vlan(VlanConfig::access(10)))
        .unwrap();
    br.add_port(PortConfig::plain().with_vlan(VlanConfig::access(11)))
        .unwrap();
    br.add_port(mirrored).unwrap();
    let mut mon = PortConfig::plain().with_vlan(VlanConfig::access(99));
    mon.mirror = MirrorMode::Destination;
    br.add_port(mon).unwrap();
    br.add_local(10, MacAddr([2, 0, 0, 0, 0, 0xfe]), 0).unwrap();

    let warm = traffic(0, 2000);
    let hot = traffic(1_000_000, 2000);
    let mut out = TxBatch::new();
    let run = |br: &mut Bridge, t: &[(u32, Vec<u8>)], out: &mut TxBatch, now: u64| {
        let rx: Vec<RxFrame<'_>> = t.iter().map(|(p, f)| RxFrame::new(PortId(*p), f)).collect();
        let mut actions = 0;
        for batch in rx.chunks(256) {
            WATCHING.with(|w| w.set(true));
            br.process(batch, now, out);
            br.age(now, 64);
            WATCHING.with(|w| w.set(false));
            actions += out.actions().len();
        }
        actions
    };
    assert!(run(&mut br, &warm, &mut out, 1) > 0);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let learned_before = br.fdb().len();
    // New addresses (learning), repeated ones (refresh), the same again later (moves between
    // the access ports do not happen here; sources move between port 0 and port 3).
    let actions = run(&mut br, &hot, &mut out, 2) + run(&mut br, &hot, &mut out, 3);
    assert!(actions > 10_000);
    assert!(
        br.fdb().len() > learned_before,
        "the hot rounds learned new addresses"
    );
    assert!(br.port_stats(PortId(3)).unwrap().moves > 0);
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed) - before,
        0,
        "allocations on the forwarding path"
    );
}
