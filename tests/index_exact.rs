//! `ExactIndex` against a naive reference (per-identity max in a hash map, full sort),
//! plus deletion, replacement and input errors.

mod index_support;

use std::collections::HashMap;

use faceprint::index::{ExactIndex, FaceId, FaceIndex, IdentityHit, IdentityId, IndexError};
use index_support::{Gallery, Item, gallery, probes};

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
    // 40_000 faces crosses the parallel-scan threshold; 300 does not.
    for (n, d) in [(300, 16), (40_000, 64)] {
        let g = gallery(7, n, d, 4, 0.6);
        let index = ExactIndex::new(d).unwrap();
        index.insert_batch(&g.items).unwrap();
        assert_eq!(index.len(), n);
        for (i, q) in probes(8, &g, 20, 0.6).iter().enumerate() {
            let got = index.search(q, 10).unwrap();
            assert_same(&got, &naive(&g.items, q, 10), &format!("n={n} query {i}"));
        }
    }
}

#[test]
fn results_name_each_identity_once_with_its_best_face() {
    let (g, index) = filled(11, 200, 32, 10);
    // Querying with an enrolled face: its own identity wins, through that very face.
    let (face, identity, v) = &g.items[37];
    let hits = index.search(v, 20).unwrap();
    assert_eq!((hits[0].identity, hits[0].face), (*identity, *face));
    assert!((hits[0].similarity - 1.0).abs() < 1e-5);
    let mut ids: Vec<_> = hits.iter().map(|h| h.identity).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "20 distinct identities");
    assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
    // Asking for more identities than exist returns each once.
    assert_eq!(index.search(v, 1000).unwrap().len(), 20);
    assert!(index.search(v, 0).unwrap().is_empty());
}

#[test]
fn removed_faces_and_identities_are_never_returned() {
    let (g, index) = filled(3, 120, 24, 3);
    let (face, identity, v) = g.items[10].clone();
    assert!(index.remove_face(face));
    assert!(!index.remove_face(face), "second removal finds nothing");
    assert_eq!(index.len(), 119);
    let hits = index.search(&v, 40).unwrap();
    assert!(hits.iter().all(|h| h.face != face));
    // The identity is still found through its other faces.
    assert!(hits.iter().any(|h| h.identity == identity));

    assert_eq!(index.remove_identity(identity), 2);
    assert_eq!(index.remove_identity(identity), 0);
    assert_eq!(index.len(), 117);
    assert!(index.faces_of(identity).is_empty());
    let hits = index.search(&v, 1000).unwrap();
    assert_eq!(hits.len(), 39);
    assert!(hits.iter().all(|h| h.identity != identity));

    // What is left still matches the reference exactly.
    let left: Vec<Item> = g
        .items
        .iter()
        .filter(|(f, i, _)| *f != face && *i != identity)
        .cloned()
        .collect();
    let mut left_sorted = index.items();
    left_sorted.sort_by_key(|(f, _, _)| *f);
    assert_eq!(left_sorted, left);
    for q in probes(4, &g, 10, 0.6) {
        assert_same(
            &index.search(&q, 5).unwrap(),
            &naive(&left, &q, 5),
            "after removal",
        );
    }
}

#[test]
fn inserting_a_stored_face_again_replaces_its_vector_and_identity() {
    let (g, index) = filled(5, 16, 8, 2);
    let (face, _, _) = &g.items[0];
    let (_, other_identity, other_v) = &g.items[9];
    index.insert(*face, 77, other_v).unwrap();
    assert_eq!(index.len(), 16);
    let hits = index.search(other_v, 20).unwrap();
    let moved = hits.iter().find(|h| h.identity == 77).unwrap();
    assert_eq!(moved.face, *face);
    assert!((moved.similarity - 1.0).abs() < 1e-5);
    assert!(hits.iter().any(|h| h.identity == *other_identity));
}

#[test]
fn bad_embeddings_are_rejected_with_the_values_and_store_nothing() {
    let index = ExactIndex::new(4).unwrap();
    type Case = (&'static str, Vec<f32>, fn(&IndexError) -> bool);
    let cases: Vec<Case> = vec![
        ("too short", vec![1.0, 0.0, 0.0], |e| {
            matches!(
                e,
                IndexError::Dimension {
                    expected: 4,
                    got: 3
                }
            )
        }),
        ("too long", vec![1.0, 0.0, 0.0, 0.0, 0.0], |e| {
            matches!(
                e,
                IndexError::Dimension {
                    expected: 4,
                    got: 5
                }
            )
        }),
        ("NaN", vec![f32::NAN, 1.0, 0.0, 0.0], |e| {
            matches!(e, IndexError::NonFinite { position: 0, .. })
        }),
        ("infinite", vec![0.0, 0.0, 0.0, f32::NEG_INFINITY], |e| {
            matches!(e, IndexError::NonFinite { position: 3, .. })
        }),
        ("not normalised", vec![2.0, 0.0, 0.0, 0.0], |e| {
            matches!(e, IndexError::NotUnit { .. })
        }),
        ("zero", vec![0.0; 4], |e| {
            matches!(e, IndexError::NotUnit { .. })
        }),
    ];
    for (what, v, expected) in &cases {
        let insert = index.insert(1, 1, v).unwrap_err();
        assert!(expected(&insert), "{what}: insert gave {insert}");
        let search = index.search(v, 3).unwrap_err();
        assert!(expected(&search), "{what}: search gave {search}");
        let batch = vec![(1, 1, vec![0.0, 1.0, 0.0, 0.0]), (2, 1, v.clone())];
        match index.insert_batch(&batch).unwrap_err() {
            IndexError::InBatch { position, source } => {
                assert_eq!(position, 1, "{what}");
                assert!(expected(&source), "{what}: batch gave {source}");
            }
            other => panic!("{what}: batch gave {other}"),
        }
        assert_eq!(index.len(), 0, "{what}: nothing stored");
    }
    assert!(ExactIndex::new(0).is_err());
    let msg = index.search(&[1.0; 3], 1).unwrap_err().to_string();
    assert!(msg.contains("expected 4, got 3"), "{msg}");
}
