//! Behaviour every `FaceIndex` must have, run against each implementation: identity
//! dedup, deletion, replacement, input errors.

mod support;

use faceprint::embedding::{Embedding, EmbeddingError};
use faceprint::index::IndexError;
use support::index::{Gallery, Named, gallery, implementations, probes};

fn unit(v: &[f32]) -> Embedding {
    Embedding::new(v.to_vec()).expect("a unit vector")
}

/// Each implementation, filled with the same seeded gallery of `n` faces (σ = 0.6).
fn filled(seed: u64, n: usize, d: usize, faces_per_identity: usize) -> (Gallery, Vec<Named>) {
    let g = gallery(seed, n, d, faces_per_identity, 0.6);
    let all = implementations(d);
    for (_, index) in &all {
        index.insert_batch(&g.items).unwrap();
    }
    (g, all)
}

#[test]
fn results_name_each_identity_once_with_its_best_face() {
    let (g, all) = filled(11, 200, 32, 10);
    for (name, index) in &all {
        // Querying with an enrolled face: its own identity wins, through that very face.
        let (face, identity, v) = &g.items[37];
        let hits = index.search(v, 20).unwrap();
        assert_eq!(
            (hits[0].identity, hits[0].face),
            (*identity, *face),
            "{name}"
        );
        assert!((hits[0].similarity - 1.0).abs() < 1e-5, "{name}");
        let mut ids: Vec<_> = hits.iter().map(|h| h.identity).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20, "{name}: 20 distinct identities");
        assert!(
            hits.windows(2).all(|w| w[0].similarity >= w[1].similarity),
            "{name}"
        );
        // Asking for more identities than exist returns each once.
        assert_eq!(index.search(v, 1000).unwrap().len(), 20, "{name}");
        assert!(index.search(v, 0).unwrap().is_empty(), "{name}");
    }
}

#[test]
fn every_implementation_returns_the_same_hits_on_a_small_gallery() {
    // Inserted one face at a time: a batch this size is inserted into the graph in
    // parallel, and the graph it makes (so whether a walk reaches every point) changes
    // from run to run. One at a time, each graph is the same every run; this seeded one
    // links every point, so a walk with ef above the gallery size sees them all.
    let g = gallery(21, 150, 16, 3, 0.6);
    let all = implementations(16);
    for (_, index) in &all {
        for (face, identity, v) in &g.items {
            index.insert(*face, *identity, v).unwrap();
        }
    }
    let (_, reference) = &all[0];
    for q in probes(22, &g, 25, 0.6) {
        let want = reference.search(&q, 10).unwrap();
        for (name, index) in &all[1..] {
            assert_eq!(index.search(&q, 10).unwrap(), want, "{name}");
        }
    }
}

#[test]
fn removed_faces_and_identities_are_never_returned() {
    let (g, all) = filled(3, 120, 24, 3);
    let (face, identity, v) = g.items[10].clone();
    for (name, index) in &all {
        assert!(index.remove_face(face), "{name}");
        assert!(
            !index.remove_face(face),
            "{name}: second removal finds nothing"
        );
        assert_eq!(index.len(), 119, "{name}");
        let hits = index.search(&v, 40).unwrap();
        assert!(hits.iter().all(|h| h.face != face), "{name}");
        // The identity is still found through its other faces.
        assert!(hits.iter().any(|h| h.identity == identity), "{name}");

        assert_eq!(index.remove_identity(identity), 2, "{name}");
        assert_eq!(index.remove_identity(identity), 0, "{name}");
        assert_eq!(index.len(), 117, "{name}");
        let hits = index.search(&v, 1000).unwrap();
        assert_eq!(hits.len(), 39, "{name}");
        assert!(hits.iter().all(|h| h.identity != identity), "{name}");
    }
}

#[test]
fn inserting_a_stored_face_again_replaces_its_vector_and_identity() {
    let (g, all) = filled(5, 60, 8, 2);
    let (face, _, _) = &g.items[0];
    let (_, other_identity, other_v) = &g.items[9];
    for (name, index) in &all {
        index.insert(*face, 77, other_v).unwrap();
        assert_eq!(index.len(), 60, "{name}");
        let hits = index.search(other_v, 40).unwrap();
        let moved = hits.iter().find(|h| h.identity == 77).unwrap();
        assert_eq!(moved.face, *face, "{name}");
        assert!((moved.similarity - 1.0).abs() < 1e-5, "{name}");
        assert!(hits.iter().any(|h| h.identity == *other_identity), "{name}");
        // Face 0 no longer counts for its old identity 1000, which keeps face 1.
        assert!(
            hits.iter().all(|h| h.identity != 1000 || h.face == 1),
            "{name}: old identity keeps only its other face"
        );
    }
}

#[test]
fn bad_embeddings_are_rejected_with_the_values_and_store_nothing() {
    // What is not finite or not unit length never becomes an `Embedding`, so no index
    // can be handed one: refused where it would be made, naming the value.
    type Refused = (&'static str, Vec<f32>, fn(&EmbeddingError) -> bool);
    let refused: Vec<Refused> = vec![
        ("NaN", vec![f32::NAN, 1.0, 0.0, 0.0], |e| {
            matches!(e, EmbeddingError::NonFinite { position: 0, .. })
        }),
        ("infinite", vec![0.0, 0.0, 0.0, f32::NEG_INFINITY], |e| {
            matches!(e, EmbeddingError::NonFinite { position: 3, .. })
        }),
        ("not normalised", vec![2.0, 0.0, 0.0, 0.0], |e| {
            matches!(e, EmbeddingError::NotUnit { .. })
        }),
        ("zero", vec![0.0; 4], |e| {
            matches!(e, EmbeddingError::NotUnit { .. })
        }),
    ];
    for (what, v, expected) in refused {
        let e = Embedding::new(v).unwrap_err();
        assert!(expected(&e), "{what}: {e}");
    }
    // A unit vector of the wrong length is the index's to refuse.
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
    ];
    for (name, index) in implementations(4) {
        for (what, v, expected) in &cases {
            let v = unit(v);
            let insert = index.insert(1, 1, &v).unwrap_err();
            assert!(expected(&insert), "{name} {what}: insert gave {insert}");
            let search = index.search(&v, 3).unwrap_err();
            assert!(expected(&search), "{name} {what}: search gave {search}");
            let batch = vec![(1, 1, unit(&[0.0, 1.0, 0.0, 0.0])), (2, 1, v.clone())];
            match index.insert_batch(&batch).unwrap_err() {
                IndexError::InBatch { position, source } => {
                    assert_eq!(position, 1, "{name} {what}");
                    assert!(expected(&source), "{name} {what}: batch gave {source}");
                }
                other => panic!("{name} {what}: batch gave {other}"),
            }
            assert_eq!(index.len(), 0, "{name} {what}: nothing stored");
        }
        let msg = index
            .search(&unit(&[1.0, 0.0, 0.0]), 1)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("expected 4, got 3"), "{name}: {msg}");
        assert!(
            index
                .search(&unit(&[1.0, 0.0, 0.0, 0.0]), 5)
                .unwrap()
                .is_empty(),
            "{name}"
        );
    }
}
