//! Unit tests of the forwarding table: the bucket compare, limits, ageing and the keyed hash.

use super::*;

/// The vector and the portable compares agree with the definition: equal keys, keys
/// differing only in their flags (ignored), in one 32-bit half only (a half match is no
/// match), empty slots.
#[test]
fn bucket_hits_match_the_scalar_compare() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seen = [0u32; 16];
    for _ in 0..20_000 {
        let key = OCCUPIED | next() & ((1 << 60) - 1);
        let mut bucket = Bucket::default();
        for s in bucket.keys.iter_mut() {
            let r = next();
            *s = match r % 6 {
                0 => key,
                1 => key | (r >> 8) & (F_STATIC | F_STICKY | F_LOCAL),
                2 => key ^ 1 << ((r >> 8) % 32),
                3 => key ^ 1 << (32 + (r >> 8) % 28),
                4 => 0,
                _ => OCCUPIED | next() & ((1 << 60) - 1),
            };
        }
        let want = (0..4)
            .filter(|&k| bucket.keys[k] & MATCH == key)
            .fold(0u32, |m, k| m | 1 << k);
        assert_eq!(hits(&bucket, key), want, "{:x?}", bucket.keys);
        assert_eq!(hits_portable(&bucket, key), want, "{:x?}", bucket.keys);
        seen[want as usize] += 1;
    }
    // Every pattern of hits came up.
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}

fn mac(i: u64) -> MacAddr {
    MacAddr::from_u64(0x0200_0000_0000 | i)
}

fn small(cap: usize) -> Fdb {
    Fdb::new(
        FdbConfig {
            capacity: cap,
            learn_limit: cap,
            ageing_ms: 1000,
        },
        HashKey::from_seed(7),
    )
}

/// A flush on many ports (the sorted path) and on few (the scan) remove exactly the
/// dynamic entries of those ports.
#[test]
fn flush_dynamic_on_many_and_few_ports() {
    for flushed in [
        vec![3u32, 1],
        (0..40).filter(|p| p % 3 != 0).rev().collect(),
    ] {
        let mut t = small(256);
        for i in 0..120u64 {
            assert_eq!(t.learn(1, mac(i), (i % 40) as u32, 0), Learn::Learned);
        }
        t.insert_static(1, mac(500), 1, EntryKind::Static, 0)
            .unwrap();
        let removed = t.flush_dynamic_on(&flushed);
        assert_eq!(removed, 3 * flushed.len(), "{flushed:?}");
        for i in 0..120u64 {
            let kept = !flushed.contains(&((i % 40) as u32));
            assert_eq!(t.lookup(1, mac(i), 0).is_some(), kept, "{i}");
        }
        assert_eq!(t.lookup(1, mac(500), 0), Some(1));
    }
}

#[test]
fn learn_lookup_move() {
    let mut t = small(16);
    assert_eq!(t.learn(1, mac(1), 3, 0), Learn::Learned);
    assert_eq!(t.learn(1, mac(1), 3, 10), Learn::Refreshed);
    assert_eq!(t.lookup(1, mac(1), 20), Some(3));
    assert_eq!(t.lookup(2, mac(1), 20), None, "IVL: another FID misses");
    assert_eq!(t.learn(1, mac(1), 4, 30), Learn::Moved(3));
    assert_eq!((t.port_len(3), t.port_len(4)), (0, 1));
    assert_eq!(t.lookup(1, mac(1), 1029), Some(4));
    assert_eq!(t.lookup(1, mac(1), 1030), None, "expired at age == ageing");
}

#[test]
fn limits() {
    let mut t = small(4);
    t.set_port_limit(1, 2);
    assert_eq!(t.learn(1, mac(1), 1, 0), Learn::Learned);
    assert_eq!(t.learn(1, mac(2), 1, 0), Learn::Learned);
    assert_eq!(t.learn(1, mac(3), 1, 0), Learn::Refused(Limit::Port));
    assert_eq!(t.learn(1, mac(3), 2, 0), Learn::Learned);
    assert_eq!(t.learn(1, mac(3), 1, 0), Learn::Refused(Limit::Port));
    assert_eq!(
        t.get(1, mac(3)),
        None,
        "a refused move removes the stale entry"
    );
    t.insert_static(1, mac(9), 2, EntryKind::Sticky, 0).unwrap();
    t.insert_static(1, mac(8), 2, EntryKind::Static, 0).unwrap();
    assert_eq!(t.learn(1, mac(4), 2, 0), Learn::Refused(Limit::Capacity));
    assert_eq!(
        t.insert_static(1, mac(7), 2, EntryKind::Static, 0),
        Err(FdbError::Full { capacity: 4 })
    );
    assert_eq!(t.learn(1, mac(9), 1, 0), Learn::Pinned);
    assert_eq!(t.learn(1, mac(8), 1, 0), Learn::Moved(2));
    assert_eq!(t.get(1, mac(8)).unwrap().kind, EntryKind::Static);
}

#[test]
fn aging_bounded_and_complete() {
    let mut t = small(512);
    for i in 0..400 {
        t.learn(1, mac(i), (i % 5) as u32, i);
    }
    t.insert_static(1, mac(1000), 0, EntryKind::Static, 0)
        .unwrap();
    let mut removed = 0;
    loop {
        let r = t.age(2000, 37);
        assert!(r.visited <= 37);
        removed += r.removed;
        if r.pass_complete {
            break;
        }
    }
    assert_eq!(removed, 400);
    assert_eq!((t.len(), t.dynamic_len()), (1, 0));
    for i in 0..400 {
        assert_eq!(t.learn(1, mac(i), 1, 3000), Learn::Learned);
    }
    assert_eq!(t.age_all(3500), 0);
    assert_eq!(t.age_all(4000), 400);
}

#[test]
fn removal_keeps_clusters_reachable() {
    let mut t = small(1000);
    for i in 0..1000 {
        t.learn((i % 7) as u16, mac(i), 1, 0);
    }
    for i in (0..1000).step_by(3) {
        assert!(t.remove((i % 7) as u16, mac(i)));
    }
    for i in 0..1000 {
        assert_eq!(
            t.lookup((i % 7) as u16, mac(i), 1).is_some(),
            i % 3 != 0,
            "{i}"
        );
    }
    assert_eq!(t.flush_port(1), 666);
    assert!(t.is_empty() && t.entries().next().is_none());
}

#[test]
fn keyed_hash_depends_on_key() {
    let a = HashKey::from_seed(1);
    let b = HashKey::from_seed(2);
    let k = pack(1, mac(1));
    assert_ne!(a.hash(k), b.hash(k));
}

/// Bits that differ between the two keys' words.
fn key_distance(a: HashKey, b: HashKey) -> u32 {
    a.0.iter().zip(b.0).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[test]
fn keys_from_seeds_are_odd_and_well_mixed() {
    let base = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
    let k = HashKey::from_seed(base);
    // Every seed bit, flipped alone, changes about half of the 256 key bits: each word and
    // each word's low and high halves, whatever the seed bit's position.
    let mut total = 0;
    for b in 0..128 {
        let f = HashKey::from_seed(base ^ 1 << b);
        let d = key_distance(k, f);
        assert!(
            (80..=176).contains(&d),
            "seed bit {b}: {d} key bits changed"
        );
        for (x, y) in k.0.iter().zip(f.0) {
            let (lo, hi) = ((x ^ y) as u32, ((x ^ y) >> 32) as u32);
            assert!(lo.count_ones() >= 4 && hi.count_ones() >= 4, "seed bit {b}");
        }
        total += d;
    }
    let mean = f64::from(total) / 128.0;
    assert!((120.0..=136.0).contains(&mean), "mean {mean}");
    // Words are odd (multipliers), and about half their bits are set.
    let mut ones = 0;
    for s in 0..256u128 {
        let k = HashKey::from_seed(s.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        assert!(k.0.iter().all(|w| w & 1 == 1), "seed {s}");
        ones += k.0.iter().map(|w| w.count_ones()).sum::<u32>();
    }
    let mean = f64::from(ones) / (256.0 * 4.0);
    assert!(
        (30.0..=34.0).contains(&mean),
        "mean {mean} bits set per word"
    );
    assert_eq!(std::format!("{k:?}"), "HashKey(..)");
}

/// The table's hash is its key's; every packed-key bit, flipped alone, changes about half of
/// the low 16 hash bits (those that pick the bucket) and of all 64; distinct keys, distinct
/// hashes.
#[test]
fn keyed_hash_spreads_every_key_bit() {
    let t = small(64);
    let key = HashKey::from_seed(7);
    let keys: Vec<u64> = (0..4096u64)
        .map(|i| {
            pack(
                (i % 7) as u16,
                mac(i.wrapping_mul(0x9e37_79b9) & 0xff_ffff_ffff),
            )
        })
        .collect();
    let mut low = [0u32; 60];
    let mut all = [0u32; 60];
    for &k in &keys {
        let h = t.hash(k);
        assert_eq!(h, key.hash(k));
        for b in 0..60 {
            let d = h ^ t.hash(k ^ 1 << b);
            low[b] += (d & 0xffff).count_ones();
            all[b] += d.count_ones();
        }
    }
    for b in 0..60 {
        let (l, a) = (f64::from(low[b]) / 4096.0, f64::from(all[b]) / 4096.0);
        assert!(
            (7.0..=9.0).contains(&l),
            "key bit {b}: {l} of the low 16 hash bits"
        );
        assert!(
            (30.0..=34.0).contains(&a),
            "key bit {b}: {a} of 64 hash bits"
        );
    }
    let mut hashes: Vec<u64> = keys.iter().map(|&k| t.hash(k)).collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), keys.len());
}

#[test]
fn accessors_report_the_table() {
    let mut t = small(64);
    assert!(t.is_empty());
    assert_eq!(t.config().capacity, 64);
    t.set_ageing(5);
    assert_eq!(t.config().ageing_ms, 5);
    t.learn(1, mac(1), 2, 0);
    t.insert_static(1, mac(2), 3, EntryKind::Static, 0).unwrap();
    assert!(!t.is_empty());
    assert_eq!((t.len(), t.dynamic_len()), (2, 1));
    assert_eq!(
        std::format!("{t:?}"),
        "Fdb { len: 2, dynamic: 1, slots: 128, config: FdbConfig { capacity: 64, \
         learn_limit: 64, ageing_ms: 5 }, .. }"
    );
    // Entries expire 5 ms after they were seen.
    assert_eq!(t.lookup(1, mac(1), 4), Some(2));
    assert_eq!(t.lookup(1, mac(1), 5), None);
}

/// Each call seeds a new key (from the standard library's per-instance random state).
#[cfg(feature = "std")]
#[test]
fn random_keys_differ() {
    let keys: Vec<HashKey> = (0..8).map(|_| HashKey::random()).collect();
    for (i, a) in keys.iter().enumerate() {
        assert!(keys[i + 1..].iter().all(|b| b != a), "key {i} repeats");
        assert!(a.0.iter().all(|w| w & 1 == 1));
    }
}

#[test]
fn expiry_and_full_sweeps_are_exact() {
    let mut t = small(64);
    t.learn(1, mac(1), 2, 0);
    t.insert_static(1, mac(2), 3, EntryKind::Static, 0).unwrap();
    let dynamic = t.get(1, mac(1)).unwrap();
    let fixed = t.get(1, mac(2)).unwrap();
    assert!(!t.is_expired(&dynamic, 999));
    assert!(t.is_expired(&dynamic, 1000));
    assert!(!t.is_expired(&fixed, 1_000_000));
    // One unbounded sweep visits every slot (128 here) once, plus once more each slot that a
    // removal refilled, and reports the pass complete.
    let r = t.age(1000, usize::MAX);
    assert_eq!((r.visited, r.removed, r.pass_complete), (128 + 1, 1, true));
    assert_eq!(t.len(), 1);
}
