//! HNSW graphs saved to disk: a restart loads the graph, checks it against the store, and
//! answers as an index built from the store would; a damaged graph is refused, not read.

mod support;

use std::collections::HashSet;
use std::path::Path;

use faceprint::index::{
    ExactIndex, FaceIndex, GalleryIndex, HnswIndex, IndexConfig, IndexKind, Restored,
};
use serde_json::Value;
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::face;
use support::index::{Item, gallery, perturb, probes, rng, small_config};

const D: usize = 32;

/// `ef_search` far above the gallery: HNSW then visits every point, so its answers must
/// equal exact search whatever the graph looks like.
fn config() -> IndexConfig {
    IndexConfig {
        ef_search: 2_048,
        ..small_config()
    }
}

fn exact_of(items: &[Item]) -> ExactIndex {
    let exact = ExactIndex::new(D).unwrap();
    exact.insert_batch(items).unwrap();
    exact
}

fn sorted_items(index: &dyn Fn() -> Vec<Item>) -> Vec<Item> {
    let mut items = index();
    items.sort_by_key(|(face, _, _)| *face);
    items
}

#[test]
fn a_saved_graph_loads_with_the_same_faces_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let graph_dir = dir.path().join("gallery-1");
    let g = gallery(3, 400, D, 4, 0.6);
    let hnsw = HnswIndex::with_graph_dir(D, config(), Some(graph_dir.clone())).unwrap();
    hnsw.insert_batch(&g.items).unwrap();
    assert!(hnsw.remove_face(17));
    assert!(hnsw.save().unwrap());
    for file in ["graph.hnsw.graph", "graph.hnsw.data", "slots.bin"] {
        assert!(graph_dir.join(file).is_file(), "{file}");
    }

    let loaded = HnswIndex::load(&graph_dir, D, config()).unwrap();
    assert_eq!(loaded.len(), 399);
    assert_eq!(
        sorted_items(&|| loaded.items()),
        sorted_items(&|| hnsw.items())
    );
    for q in probes(4, &g, 50, 0.6) {
        assert_eq!(loaded.search(&q, 10).unwrap(), hnsw.search(&q, 10).unwrap());
    }
    // The loaded index goes on saving to the same place, and loads again.
    loaded.insert_batch(&g.items[..1]).unwrap();
    assert!(loaded.save().unwrap());
    assert_eq!(HnswIndex::load(&graph_dir, D, config()).unwrap().len(), 399);
    // Nothing is left beside the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn an_index_without_a_directory_saves_nothing() {
    let g = gallery(5, 100, D, 4, 0.6);
    let hnsw = HnswIndex::new(D, config()).unwrap();
    hnsw.insert_batch(&g.items).unwrap();
    assert!(!hnsw.save().unwrap());
}

/// The store after the graph was saved: 20 faces removed, 5 re-embedded, 10 added.
fn changed_store(items: &[Item]) -> (Vec<Item>, HashSet<i64>) {
    let mut r = rng(9);
    let removed: HashSet<i64> = (0..20).map(|i| i * 13).collect();
    let mut store: Vec<Item> = items
        .iter()
        .filter(|(face, _, _)| !removed.contains(face))
        .cloned()
        .collect();
    for item in store.iter_mut().take(5) {
        item.2 = perturb(&mut r, &item.2, 0.3);
    }
    for i in 0..10 {
        let centre = &items[i * 4].2;
        store.push((
            10_000 + i as i64,
            1000 + i as i64,
            perturb(&mut r, centre, 0.3),
        ));
    }
    (store, removed)
}

fn restore_from(dir: &Path, store: &[Item]) -> (GalleryIndex, Restored) {
    let index = GalleryIndex::restore(D, config(), dir).unwrap();
    assert_eq!(
        index.kind(),
        IndexKind::Hnsw,
        "answers from the loaded graph"
    );
    for page in store.chunks(100) {
        index.restore_batch(page).unwrap();
    }
    let restored = index.finish_restore().expect("a restore was under way");
    index.wait_idle();
    (index, restored)
}

/// A gallery index of `n` faces that has switched to HNSW (past the crossover of 40)
/// and saved its graph in `dir`.
fn switched_gallery(dir: &Path, seed: u64, n: usize) -> support::index::Gallery {
    let g = gallery(seed, n, D, 4, 0.6);
    let built = GalleryIndex::with_graph_dir(D, config(), Some(dir.to_path_buf())).unwrap();
    built.insert_batch(&g.items).unwrap();
    built.wait_idle();
    assert_eq!(built.kind(), IndexKind::Hnsw, "{n} faces");
    assert!(
        dir.join("slots.bin").is_file(),
        "the switch saved the graph"
    );
    g
}

#[test]
fn a_restored_gallery_is_reconciled_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let graph_dir = dir.path().join("gallery-7");
    let g = switched_gallery(&graph_dir, 11, 300);

    let (store, removed) = changed_store(&g.items);
    let (index, restored) = restore_from(&graph_dir, &store);
    assert_eq!(
        restored,
        Restored {
            kept: 300 - 20 - 5,
            added: 5 + 10,
            removed: 20,
        }
    );
    assert_eq!(index.len(), store.len());
    assert_eq!(sorted_items(&|| index.items()), {
        let mut s = store.clone();
        s.sort_by_key(|(face, _, _)| *face);
        s
    });
    let exact = exact_of(&store);
    for q in probes(12, &g, 60, 0.6)
        .iter()
        .chain(store.iter().map(|i| &i.2).take(20))
    {
        let hits = index.search(q, 10).unwrap();
        assert!(hits.iter().all(|h| !removed.contains(&h.face)));
        assert_eq!(hits, exact.search(q, 10).unwrap());
    }

    // The reconciled graph was saved: the next start finds nothing to change.
    let (again, restored) = restore_from(&graph_dir, &store);
    assert_eq!(
        restored,
        Restored {
            kept: store.len(),
            added: 0,
            removed: 0,
        }
    );
    assert_eq!(again.len(), store.len());
}

#[test]
fn a_gallery_restored_below_half_the_crossover_goes_back_to_the_exact_scan() {
    let dir = tempfile::tempdir().unwrap();
    let graph_dir = dir.path().join("gallery-2");
    let g = switched_gallery(&graph_dir, 13, 120);

    let (index, restored) = restore_from(&graph_dir, &g.items[..12]);
    assert_eq!(restored.removed, 108);
    assert_eq!(index.kind(), IndexKind::Exact, "12 faces < 40 / 2");
    assert_eq!(index.len(), 12);
}

#[test]
fn a_graph_that_does_not_match_the_store_is_dropped_and_the_index_built_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let graph_dir = dir.path().join("gallery-3");
    let g = switched_gallery(&graph_dir, 19, 200);
    // Every face re-embedded (a new model of the same dimension).
    let mut r = rng(20);
    let store: Vec<Item> = g
        .items
        .iter()
        .map(|(face, identity, v)| (*face, *identity, perturb(&mut r, v, 0.5)))
        .collect();
    let index = GalleryIndex::restore(D, config(), &graph_dir).unwrap();
    for page in store.chunks(100) {
        index.restore_batch(page).unwrap();
    }
    assert_eq!(index.finish_restore(), None, "the restore was abandoned");
    index.wait_idle();
    assert_eq!(index.restored(), None);
    assert_eq!(index.len(), 200);
    assert_eq!(
        index.kind(),
        IndexKind::Hnsw,
        "built afresh past the crossover"
    );
    let exact = exact_of(&store);
    for (_, _, q) in store.iter().take(30) {
        assert_eq!(index.search(q, 10).unwrap(), exact.search(q, 10).unwrap());
    }
    // The new graph replaced the stale one on disk (the stale one would hold none of
    // these embeddings). The switch saves what it built: the first page's 100 faces,
    // plus the second page's if it arrived while the graph was being built; faces
    // inserted after the switch are saved by the next rebuild or restore, so the next
    // start adds them.
    let (again, restored) = restore_from(&graph_dir, &store);
    assert!(restored.kept == 100 || restored.kept == 200, "{restored:?}");
    assert_eq!(restored.kept + restored.added, 200, "{restored:?}");
    assert_eq!(restored.removed, 0);
    assert_eq!(again.len(), 200);
}

/// Builds, saves and returns a graph directory of 200 faces.
fn saved_graph(dir: &Path) -> std::path::PathBuf {
    let graph_dir = dir.join("gallery-1");
    let g = gallery(17, 200, D, 4, 0.6);
    let hnsw = HnswIndex::with_graph_dir(D, config(), Some(graph_dir.clone())).unwrap();
    hnsw.insert_batch(&g.items).unwrap();
    assert!(hnsw.save().unwrap());
    graph_dir
}

fn assert_refused(dir: &Path, dim: usize, config: IndexConfig, what: &str) -> String {
    match HnswIndex::load(dir, dim, config) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{what}: loaded"),
    }
}

#[test]
fn a_damaged_missing_or_mismatched_graph_is_refused_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let graph_dir = saved_graph(dir.path());
    let damage = |file: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let copy = dir.path().join(format!("copy-{file}"));
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(&graph_dir).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        f(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        copy
    };

    for file in ["graph.hnsw.graph", "graph.hnsw.data", "slots.bin"] {
        let flipped = damage(file, &|b| {
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
        });
        let message = assert_refused(&flipped, D, config(), file);
        assert!(message.contains(file), "{message}");
        let truncated = damage(file, &|b| b.truncate(b.len() - 3));
        assert_refused(&truncated, D, config(), file);
    }
    let gone = damage("slots.bin", &|_| {});
    std::fs::remove_file(gone.join("graph.hnsw.data")).unwrap();
    assert_refused(&gone, D, config(), "no data file");
    assert_refused(&dir.path().join("nowhere"), D, config(), "no directory");

    let message = assert_refused(&graph_dir, D + 1, config(), "another dimension");
    assert!(message.contains("configured"), "{message}");
    let other_m = IndexConfig { m: 24, ..config() };
    assert_refused(&graph_dir, D, other_m, "another m");
    // The original is untouched by all of this.
    assert_eq!(HnswIndex::load(&graph_dir, D, config()).unwrap().len(), 200);
}

async fn index_status(app: &TestApp) -> Value {
    let (status, body) = json_of(app.get("/readyz").await).await;
    assert_eq!(status, 200, "{body}");
    body["indexes"][0].clone()
}

/// The server saves a gallery's graph beside its SQLite file and loads it after a restart,
/// checking it against the store: faces enrolled or removed since it was saved count.
#[tokio::test]
async fn the_server_saves_the_graph_beside_its_database_and_loads_it_after_a_restart() {
    let db = TestDb::sqlite();
    let db_file = db.url.strip_prefix("sqlite://").unwrap().to_string();
    let mut settings = test_settings(&db);
    settings.index.crossover = 6;
    let app = TestApp::spawn_with(db, settings).await;
    for who in ["s1", "s2", "s3", "s4"] {
        let response = app.enroll(who, &[face(who, 1), face(who, 2)]).await;
        assert_eq!(response.status(), 201, "{who}");
    }
    let graph_dir = Path::new(&format!("{db_file}.graphs")).join("gallery-1");
    // The switch to HNSW runs in the background and saves the graph when it is done.
    for _ in 0..600 {
        let status = index_status(&app).await;
        if status["kind"] == "hnsw" && graph_dir.join("slots.bin").is_file() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let slots = graph_dir.join("slots.bin");
    assert!(slots.is_file(), "graph saved in {graph_dir:?}");
    assert_eq!(index_status(&app).await["restored"], Value::Null);
    let (_, before) = json_of(app.identify(&face("s2", 3)).await).await;
    assert_eq!(before["match"]["identity"], "s2", "{before}");

    // Faces enrolled after the switch saved the graph are added, and it is saved again, at
    // the first restart; from then on a restart with nothing changed rewrites nothing.
    let app = app.restart().await;
    let saved = std::fs::read(&slots).unwrap();
    let app = app.restart().await;
    // Ready means the indexes are in place: the loaded graph answers, nothing is building.
    let status = index_status(&app).await;
    assert_eq!(status["kind"], "hnsw", "{status}");
    assert_eq!(status["faces"], 8);
    assert_eq!(status["building"], false);
    let loaded = serde_json::json!({"kept": 8, "added": 0, "removed": 0});
    assert_eq!(status["restored"], loaded, "the graph came from disk");
    let (_, after) = json_of(app.identify(&face("s2", 3)).await).await;
    assert_eq!(after["candidates"], before["candidates"]);
    assert_eq!(
        std::fs::read(&slots).unwrap(),
        saved,
        "nothing changed, nothing rewritten"
    );

    // Removed and enrolled while it runs: the saved graph is stale at the next start.
    assert_eq!(app.delete_identity("s2").await.status(), 200);
    let response = app.enroll("s1-again", &[face("s1", 3)]).await;
    assert_eq!(response.status(), 201);
    let app = app.restart().await;
    let status = index_status(&app).await;
    assert_eq!(status["kind"], "hnsw", "{status}");
    assert_eq!(status["faces"], 7);
    let loaded = serde_json::json!({"kept": 6, "added": 1, "removed": 2});
    assert_eq!(status["restored"], loaded, "{status}");
    let (_, body) = json_of(app.identify(&face("s2", 3)).await).await;
    let named = |body: &Value, who: &str| {
        body["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["identity"] == who)
    };
    assert!(!named(&body, "s2"), "{body}");
    let (_, body) = json_of(app.identify(&face("s1", 3)).await).await;
    assert!(named(&body, "s1-again"), "{body}");
    assert_ne!(
        std::fs::read(&slots).unwrap(),
        saved,
        "the reconciled graph was saved"
    );
}
