//! `HnswIndex` against `ExactIndex`: recall at 10 000 faces, identity widening, and
//! deletion before, during and after a background rebuild.

mod support;

use std::collections::HashSet;

use faceprint::index::{ExactIndex, FaceIndex, HnswIndex, IndexConfig};
use support::index::{gallery, perturb, probes, rng, small_config};

/// Recall@10 of identity-level HNSW results against exact search, at the defaults.
///
/// Gallery: 10 000 faces, D = 128, 2 500 identities × 4 faces, each face
/// `normalise(centre + e)` with `‖e‖ ≈ 0.6` (same-identity cosine ≈ 0.74, like real face
/// embeddings). Queries: 500 fresh faces of random enrolled identities (`σ = 0.6`) — the
/// `/identify` workload. Recall = |HNSW top-10 identities ∩ exact top-10| / 5 000.
/// `IndexConfig::default()`: M = 16, ef_construction = 200, ef_search = 256 (at 64 the
/// same test measures 0.94; see BENCHMARKS.md).
#[test]
fn hnsw_top10_identities_agree_with_exact_search_at_10k_faces() {
    let d = 128;
    let g = gallery(2024, 10_000, d, 4, 0.6);
    let exact = ExactIndex::new(d).unwrap();
    exact.insert_batch(&g.items).unwrap();
    let hnsw = HnswIndex::new(d, IndexConfig::default()).unwrap();
    hnsw.insert_batch(&g.items).unwrap();
    assert_eq!(hnsw.len(), 10_000);

    let queries = probes(2025, &g, 500, 0.6);
    let (mut found, mut wanted, mut top1) = (0, 0, 0);
    for q in &queries {
        let want = exact.search(q, 10).unwrap();
        let got = hnsw.search(q, 10).unwrap();
        assert_eq!(got.len(), 10);
        let want_ids: HashSet<_> = want.iter().map(|h| h.identity).collect();
        found += got
            .iter()
            .filter(|h| want_ids.contains(&h.identity))
            .count();
        wanted += want.len();
        top1 += usize::from(got[0].identity == want[0].identity);
    }
    let recall = found as f64 / wanted as f64;
    println!("recall@10 = {recall:.4}, top-1 agreement {top1}/500");
    assert!(recall >= 0.99, "recall@10 = {recall:.4} < 0.99");
}

#[test]
fn search_widens_until_it_has_k_distinct_identities() {
    // One identity owns 300 near-copies of the query; a plain ef = 64 search would see
    // only that identity. 30 other identities have one face each.
    let d = 32;
    let mut r = rng(9);
    let g = gallery(10, 30, d, 1, 0.6);
    let q = g.centres[0].clone();
    let mut items = g.items.clone();
    items.extend((0..300).map(|i| (10_000 + i, 1, perturb(&mut r, &q, 0.05))));
    let config = IndexConfig {
        ef_search: 64,
        ..IndexConfig::default()
    };
    let hnsw = HnswIndex::new(d, config).unwrap();
    hnsw.insert_batch(&items).unwrap();
    let hits = hnsw.search(&q, 10).unwrap();
    assert_eq!(hits.len(), 10);
    assert_eq!(hits[0].identity, 1);
    let ids: HashSet<_> = hits.iter().map(|h| h.identity).collect();
    assert_eq!(ids.len(), 10, "distinct identities: {hits:?}");
    // Asking for every identity returns all 31, once each.
    assert_eq!(hnsw.search(&q, 100).unwrap().len(), 31);
}

#[test]
fn removed_faces_stay_gone_before_during_and_after_a_rebuild() {
    let d = 32;
    let g = gallery(31, 3_000, d, 3, 0.6);
    let config = IndexConfig {
        rebuild_fraction: 0.03,
        rebuild_min_deleted: 100,
        ef_search: 64,
        ..small_config()
    };
    let hnsw = HnswIndex::new(d, config).unwrap();
    hnsw.insert_batch(&g.items).unwrap();
    let gone = |hnsw: &HnswIndex, removed: &HashSet<i64>, when: &str| {
        for (face, _, v) in g.items.iter().filter(|(f, _, _)| removed.contains(f)) {
            let hits = hnsw.search(v, 10).unwrap();
            assert!(
                hits.iter().all(|h| !removed.contains(&h.face)),
                "{when}: removed face {face} returned"
            );
        }
    };

    // Before: 99 removals stay under rebuild_min_deleted; results skip them at once.
    let mut removed: HashSet<i64> = (0..99).map(|i| i * 7).collect();
    for &f in &removed {
        assert!(hnsw.remove_face(f));
    }
    assert!(!hnsw.is_rebuilding());
    assert_eq!(hnsw.deleted(), 99);
    gone(&hnsw, &removed, "before the rebuild");

    // The 100th dead point starts the rebuild; everything below happens during it.
    assert_eq!(hnsw.remove_identity(1000 + 2_000 / 3), 3);
    removed.extend(
        g.items
            .iter()
            .filter(|i| i.1 == 1000 + 2_000 / 3)
            .map(|i| i.0),
    );
    assert!(
        hnsw.is_rebuilding(),
        "102 dead of 3 000 ≥ 10% · … and ≥ 100"
    );
    for f in 2_500..2_520 {
        assert!(hnsw.remove_face(f));
        removed.insert(f);
    }
    let mut r = rng(32);
    let added: Vec<_> = (0..40)
        .map(|i| {
            (
                50_000 + i,
                7_000 + i,
                perturb(&mut r, &g.centres[i as usize], 0.3),
            )
        })
        .collect();
    hnsw.insert_batch(&added).unwrap();
    let during = hnsw.is_rebuilding();
    gone(&hnsw, &removed, "during the rebuild");

    hnsw.wait_for_rebuild();
    assert!(during, "the changes above were made while the rebuild ran");
    assert_eq!(hnsw.generation(), 1);
    assert_eq!(hnsw.len(), 3_000 - removed.len() + added.len());
    // Removals made during the rebuild are either left out of the new graph (made before
    // the thread copied the live points) or dead points in it; the rest are gone.
    assert!(hnsw.deleted() <= 20, "{} dead points", hnsw.deleted());
    gone(&hnsw, &removed, "after the rebuild");
    for (face, identity, v) in &added {
        let hits = hnsw.search(v, 1).unwrap();
        assert_eq!(
            (hits[0].face, hits[0].identity),
            (*face, *identity),
            "inserted during"
        );
    }
    let live: HashSet<i64> = hnsw.items().iter().map(|i| i.0).collect();
    assert_eq!(live.len(), hnsw.len());
    assert!(live.is_disjoint(&removed));
}
