//! `ExactIndex` against a naive reference (per-identity max in a hash map, full sort),
//! before and after removals. Behaviour shared by all indexes: `index_contract.rs`.

mod support;

use std::collections::HashMap;

use faceprint::index::{
    ExactIndex, FaceId, FaceIndex, IdentityHit, IdentityId, IndexConfig, IndexError,
};
use support::index::{Gallery, Item, gallery, probes, random_unit, rng};

/// The split-pass threshold the 40 000-face cases set, below their size, so that the
/// parallel (chunked and merged) scan stays covered whatever the default.
const SPLIT_FROM: usize = 32_768;

/// Naive reference: score every face in f64, keep each identity's best, sort everything.
fn naive(items: &[Item], q: &[f32], k: usize) -> Vec<(IdentityId, FaceId, f64)> {
    let mut best: HashMap<IdentityId, (FaceId, f64)> = HashMap::new();
    for (face, identity, v) in items {
        let s: f64 = v.iter().zip(q).map(|(&a, &b)| a as f64 * b as f64).sum();
        let e = best.entry(*identity).or_insert((*face, f64::NEG_INFINITY));
        if s > e.1 {
            *e = (*face, s);
        }
    }
    let mut all: Vec<_> = best.into_iter().map(|(i, (f, s))| (i, f, s)).collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2));
    all.truncate(k);
    all
}

fn assert_same(got: &[IdentityHit], want: &[(IdentityId, FaceId, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (rank, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!((g.identity, g.face), (w.0, w.1), "{what}: rank {rank}");
        assert!(
            (g.similarity as f64 - w.2).abs() < 1e-5,
            "{what}: rank {rank} similarity {} vs {}",
            g.similarity,
            w.2
        );
    }
}

/// An exact index holding a seeded gallery of `n` faces (σ = 0.6).
fn filled(seed: u64, n: usize, d: usize, faces_per_identity: usize) -> (Gallery, ExactIndex) {
    let g = gallery(seed, n, d, faces_per_identity, 0.6);
    let index = ExactIndex::new(d).unwrap();
    index.insert_batch(&g.items).unwrap();
    (g, index)
}

#[test]
fn exact_search_equals_the_naive_full_sort_for_small_and_parallel_sized_galleries() {
    // 40_000 faces crosses the parallel-scan threshold set here; 300 do not.
    let config = IndexConfig {
        parallel_scan_min_rows: SPLIT_FROM,
        ..Default::default()
    };
    for (n, d) in [(300, 16), (40_000, 64)] {
        let g = gallery(7, n, d, 4, 0.6);
        let index = ExactIndex::with_config(d, &config).unwrap();
        index.insert_batch(&g.items).unwrap();
        assert_eq!(index.len(), n);
        for (i, q) in probes(8, &g, 20, 0.6).iter().enumerate() {
            let got = index.search(q, 10).unwrap();
            assert_same(&got, &naive(&g.items, q, 10), &format!("n={n} query {i}"));
        }
    }
}

#[test]
fn after_removals_search_still_equals_the_naive_reference_on_what_is_left() {
    let (g, index) = filled(3, 120, 24, 3);
    let (face, identity, _) = g.items[10].clone();
    assert!(index.remove_face(face));
    assert_eq!(index.remove_identity(1007), 3);
    assert_eq!(index.faces_of(identity).len(), 2);
    assert!(index.faces_of(1007).is_empty());
    let left: Vec<Item> = g
        .items
        .iter()
        .filter(|(f, i, _)| *f != face && *i != 1007)
        .cloned()
        .collect();
    let mut stored = index.items();
    stored.sort_by_key(|(f, _, _)| *f);
    assert_eq!(stored, left);
    for q in probes(4, &g, 10, 0.6) {
        assert_same(
            &index.search(&q, 5).unwrap(),
            &naive(&left, &q, 5),
            "after removal",
        );
    }
}

#[test]
fn concurrent_queries_batched_into_shared_scans_get_the_naive_answers() {
    // 40_000 faces: batches also take the parallel (chunked and merged) scan, its
    // threshold set here; 500 do not.
    for (n, d) in [(500, 16), (40_000, 32)] {
        let g = gallery(31, n, d, 4, 0.6);
        let config = IndexConfig {
            batch_max_queries: 5,
            batch_window_us: 2_000,
            parallel_scan_min_rows: SPLIT_FROM,
            ..Default::default()
        };
        let index = ExactIndex::with_config(d, &config).unwrap();
        index.insert_batch(&g.items).unwrap();
        let queries = probes(32, &g, 48, 0.6);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (index, g, queries) = (&index, &g, &queries);
                s.spawn(move || {
                    for (i, q) in queries.iter().enumerate().skip(t).step_by(8) {
                        // Queries of one batch want different numbers of identities.
                        let k = 1 + (i % 12);
                        let got = index.search(q, k).unwrap();
                        assert_same(&got, &naive(&g.items, q, k), &format!("n={n} query {i}"));
                    }
                });
            }
        });
    }
}

#[test]
fn an_enrolled_face_enrolled_twice_ranks_its_identity_first_by_the_lower_face_id() {
    let g = gallery(41, 60, 16, 3, 0.6);
    let index = ExactIndex::new(16).unwrap();
    index.insert_batch(&g.items[30..]).unwrap();
    let (face, identity, v) = g.items[45].clone();
    // The same embedding again under a lower face id of the same identity.
    index.insert(7, identity, &v).unwrap();
    let hits = index.search(&v, 3).unwrap();
    assert_eq!((hits[0].identity, hits[0].face), (identity, 7));
    assert!(face > 7);
}

/// One pass for many queries answers each as `search` does, on one thread and split
/// over rayon's, for every batch size the kernel tiles (1 to 4 queries, and more); a
/// query of the wrong dimension anywhere in the list answers nothing.
#[test]
fn search_many_answers_each_query_as_search_does() {
    let (n, d) = (40_000, 64);
    let g = gallery(21, n, d, 4, 0.6);
    let qs = probes(22, &g, 9, 0.6);
    for min_rows in [usize::MAX, SPLIT_FROM] {
        let config = IndexConfig {
            parallel_scan_min_rows: min_rows,
            ..Default::default()
        };
        let index = ExactIndex::with_config(d, &config).unwrap();
        index.insert_batch(&g.items).unwrap();
        for b in [1, 2, 3, 4, 5, 9] {
            let batch: Vec<_> = qs[..b].iter().collect();
            let got = index.search_many(&batch, 10).unwrap();
            assert_eq!(got.len(), b);
            for (i, (hits, q)) in got.iter().zip(&qs).enumerate() {
                let what = format!("min_rows {min_rows}, batch {b}, query {i}");
                assert_eq!(hits, &index.search(q, 10).unwrap(), "{what}");
                assert_same(hits, &naive(&g.items, q, 10), &what);
            }
        }
        assert_eq!(
            index.search_many(&[&qs[0], &qs[1]], 0).unwrap(),
            vec![Vec::new(), Vec::new()]
        );
        let short = random_unit(&mut rng(23), d / 2);
        assert!(matches!(
            index.search_many(&[&qs[0], &short], 10),
            Err(IndexError::Dimension { expected, got }) if expected == d && got == d / 2
        ));
    }
    let empty = ExactIndex::new(d).unwrap();
    assert_eq!(empty.search_many(&[&qs[0]], 10).unwrap(), vec![Vec::new()]);
    assert!(empty.search_many(&[], 10).unwrap().is_empty());
}

#[test]
fn a_zero_dimension_is_refused() {
    assert!(matches!(
        ExactIndex::new(0),
        Err(IndexError::Config { field: "dim", .. })
    ));
}

/// The int8 scan (the default) against the f32 scan, answer for answer and bit for bit,
/// where the intervals matter most: near-duplicate faces of different identities (scores
/// closer than the int8 rounding), exact ties, fewer identities than asked for,
/// replaced and removed rows, and galleries large enough for the parallel scan.
#[test]
fn the_int8_scan_answers_exactly_what_the_f32_scan_answers() {
    use faceprint::index::ScanPrecision;
    use support::index::{perturb, rng};
    let f32_only = IndexConfig {
        scan: ScanPrecision::F32,
        ..Default::default()
    };
    for (n, d, per, sigma) in [(2_000, 32, 1, 0.6), (40_000, 64, 4, 0.6), (600, 16, 2, 0.6)] {
        let mut g = gallery(51 + n as u64, n, d, per, sigma);
        // Near-duplicates: 200 faces of other identities within ~0.001 of an existing one,
        // and 20 exact copies under new identities (ties decided by face id).
        let mut r = rng(99);
        for j in 0..220 {
            let v = if j < 200 {
                perturb(&mut r, &g.items[j % 50].2, 0.002)
            } else {
                g.items[j % 50].2.clone()
            };
            g.items
                .push(((n + j) as FaceId, 900_000 + j as IdentityId, v));
        }
        let int8 = ExactIndex::new(d).unwrap();
        let exact = ExactIndex::with_config(d, &f32_only).unwrap();
        for index in [&int8, &exact] {
            index.insert_batch(&g.items).unwrap();
            // A replaced row and removed ones.
            index.insert(3, 777, &g.items[0].2).unwrap();
            index.remove_face(5);
            index.remove_identity(1000 + (n / per) as IdentityId - 1);
        }
        let mut queries = probes(52, &g, 40, sigma);
        queries.extend(g.items.iter().take(50).map(|(_, _, v)| v.clone()));
        for (i, q) in queries.iter().enumerate() {
            for k in [1, 3, 10, 60] {
                let (a, b) = (int8.search(q, k).unwrap(), exact.search(q, k).unwrap());
                assert_eq!(a, b, "n={n} query {i} k={k}");
            }
        }
    }
    // Fewer identities than asked for: every row is a candidate.
    let g = gallery(60, 90, 8, 30, 0.6);
    let (int8, exact) = (
        ExactIndex::new(8).unwrap(),
        ExactIndex::with_config(8, &f32_only).unwrap(),
    );
    int8.insert_batch(&g.items).unwrap();
    exact.insert_batch(&g.items).unwrap();
    for q in probes(61, &g, 10, 0.6) {
        assert_eq!(int8.search(&q, 5).unwrap(), exact.search(&q, 5).unwrap());
        assert_eq!(int8.search(&q, 5).unwrap().len(), 3);
    }
}
