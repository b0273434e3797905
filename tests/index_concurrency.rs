//! Several threads inserting, removing and searching one index at once.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use faceprint::index::{FaceIndex, GalleryIndex, HnswIndex, IndexConfig, IndexKind};
use support::index::{Item, gallery, small_config};

const WRITERS: usize = 4;
const READERS: usize = 2;

/// Writers insert disjoint faces (one at a time and in batches) and remove some; readers
/// search throughout. Every result must be well-formed and name only faces that were
/// inserted; afterwards the index holds exactly the faces inserted and not removed, and
/// each finds its own identity first.
fn insert_remove_and_search_concurrently(index: Arc<dyn FaceIndex>, name: &str) {
    let d = index.dim();
    let g = gallery(77, 1_200, d, 3, 0.6);
    let chunks: Vec<Vec<Item>> = g
        .items
        .chunks(g.items.len() / WRITERS)
        .map(|c| c.to_vec())
        .collect();
    // Faces 0, 10, 20, … are removed again by their writer.
    let removed = |f: i64| f % 10 == 0;
    let probes: Vec<_> = g.items.iter().step_by(37).map(|i| i.2.clone()).collect();
    let all_faces: HashSet<i64> = g.items.iter().map(|i| i.0).collect();

    std::thread::scope(|s| {
        for chunk in &chunks {
            let index = Arc::clone(&index);
            s.spawn(move || {
                let (singles, batch) = chunk.split_at(chunk.len() / 2);
                for (face, identity, v) in singles {
                    index.insert(*face, *identity, v).unwrap();
                }
                for part in batch.chunks(50) {
                    index.insert_batch(part).unwrap();
                }
                for (face, _, _) in chunk.iter().filter(|i| removed(i.0)) {
                    assert!(index.remove_face(*face), "{name}: remove {face}");
                }
            });
        }
        for r in 0..READERS {
            let (index, probes, all_faces) = (Arc::clone(&index), &probes, &all_faces);
            s.spawn(move || {
                for round in 0..5 {
                    for q in probes.iter().skip(r) {
                        let hits = index.search(q, 5).unwrap();
                        let ids: HashSet<_> = hits.iter().map(|h| h.identity).collect();
                        assert_eq!(ids.len(), hits.len(), "{name} round {round}: dedup");
                        assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
                        assert!(hits.iter().all(|h| all_faces.contains(&h.face)));
                        assert!(hits.iter().all(|h| (-1.0..=1.0).contains(&h.similarity)));
                    }
                }
            });
        }
    });

    let kept: Vec<&Item> = g.items.iter().filter(|i| !removed(i.0)).collect();
    assert_eq!(index.len(), kept.len(), "{name}: live faces");
    for (face, identity, v) in kept.iter().step_by(7) {
        let hits = index.search(v, 3).unwrap();
        assert_eq!(hits[0].identity, *identity, "{name}: face {face}");
        assert!(
            hits.iter().all(|h| !removed(h.face)),
            "{name}: removed face returned"
        );
    }
}

#[test]
fn hnsw_index_serves_concurrent_writers_and_readers() {
    let config = IndexConfig {
        rebuild_fraction: 0.05,
        ..small_config()
    };
    let index = Arc::new(HnswIndex::new(24, config).unwrap());
    insert_remove_and_search_concurrently(index.clone(), "hnsw");
    // Removing a tenth of the faces (over 5%, ≥ rebuild_min_deleted) starts a rebuild.
    index.wait_for_rebuild();
    assert!(index.generation() >= 1, "a rebuild ran during the test");
}

#[test]
fn gallery_index_serves_concurrent_writers_and_readers_while_switching_to_hnsw() {
    // small_config's crossover is 40 faces: the switch happens under load.
    let index = Arc::new(GalleryIndex::new(24, small_config()).unwrap());
    insert_remove_and_search_concurrently(index.clone(), "gallery");
    index.wait_idle();
    assert_eq!(index.kind(), IndexKind::Hnsw);
    assert_eq!(index.len(), 1_080);
}
