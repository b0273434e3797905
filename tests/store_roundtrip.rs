//! The SQL store against a real database: enrollment transactions, lookups, deletion,
//! model versions and re-embedding, on SQLite and (when configured) PostgreSQL.

mod support;

use faceprint::embedding::Embedding;
use faceprint::store::{NewEnrollment, NewFace, Store};
use support::db::TestDb;

fn face(seed: f32, with_image: bool) -> NewFace {
    let raw = [seed, 1.0 - seed, 0.5, -0.25];
    let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
    NewFace {
        embedding: Embedding::new(raw.iter().map(|v| v / norm).collect()).expect("unit"),
        image_sha256: format!("{seed:064}"),
        image: with_image.then(|| vec![1, 2, 3, (seed * 100.0) as u8]),
    }
}

fn enrollment(gallery: &str, who: &str, faces: Vec<NewFace>) -> NewEnrollment {
    NewEnrollment {
        gallery: gallery.into(),
        external_id: who.into(),
        metadata: Some(r#"{"team":"blue"}"#.into()),
        model_version: "v1".into(),
        faces,
    }
}

async fn open(db: &TestDb) -> Store {
    Store::connect(&db.url, 4)
        .await
        .expect("connect and migrate")
}

async fn enrolling_twice_adds_faces_to_one_identity(db: TestDb) {
    let store = open(&db).await;
    let first = store
        .enroll(&enrollment(
            "main",
            "alice",
            vec![face(0.1, true), face(0.2, true)],
        ))
        .await
        .expect("first enrollment");
    let second = store
        .enroll(&enrollment("main", "alice", vec![face(0.3, false)]))
        .await
        .expect("second enrollment");
    assert!(first.created && !second.created);
    assert_eq!(first.identity_id, second.identity_id);
    assert_eq!(first.face_ids.len(), 2);
    assert_eq!(second.face_ids.len(), 1);

    let detail = store
        .identity(first.gallery_id, "alice")
        .await
        .expect("query")
        .expect("alice exists");
    assert_eq!(detail.faces.len(), 3);
    assert_eq!(
        detail.faces.iter().map(|f| f.has_image).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(detail.metadata, Some(serde_json::json!({"team": "blue"})));
}
on_both_backends!(
    enrolling_twice_adds_faces_to_one_identity,
    super::enrolling_twice_adds_faces_to_one_identity
);

async fn embeddings_come_back_bit_for_bit_in_face_order(db: TestDb) {
    let store = open(&db).await;
    let given = vec![face(0.11, false), face(0.77, false)];
    let enrolled = store
        .enroll(&enrollment("g", "bob", given.clone()))
        .await
        .expect("enroll");
    let page = store
        .faces_page(enrolled.gallery_id, 0, 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 2);
    for (stored, original) in page.iter().zip(&given) {
        assert_eq!(stored.identity_id, enrolled.identity_id);
        assert_eq!(stored.embedding, original.embedding);
    }
    let after_first = store
        .faces_page(enrolled.gallery_id, page[0].id, 10)
        .await
        .expect("second page");
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].id, page[1].id);
}
on_both_backends!(
    embeddings_come_back_bit_for_bit_in_face_order,
    super::embeddings_come_back_bit_for_bit_in_face_order
);

async fn deleting_an_identity_removes_it_and_its_faces(db: TestDb) {
    let store = open(&db).await;
    let alice = store
        .enroll(&enrollment(
            "g",
            "alice",
            vec![face(0.1, false), face(0.2, false)],
        ))
        .await
        .expect("enroll alice");
    store
        .enroll(&enrollment("g", "carol", vec![face(0.3, false)]))
        .await
        .expect("enroll carol");
    let removed = store
        .delete_identity(alice.gallery_id, "alice")
        .await
        .expect("delete")
        .expect("alice existed");
    assert_eq!(removed.identity_id, alice.identity_id);
    assert_eq!(removed.face_ids, alice.face_ids);
    assert_eq!(
        store
            .identity(alice.gallery_id, "alice")
            .await
            .expect("query"),
        None
    );
    let left = store
        .faces_page(alice.gallery_id, 0, 10)
        .await
        .expect("page");
    assert_eq!(left.len(), 1);
    let again = store
        .delete_identity(alice.gallery_id, "alice")
        .await
        .expect("delete");
    assert_eq!(again, None);
}
on_both_backends!(
    deleting_an_identity_removes_it_and_its_faces,
    super::deleting_an_identity_removes_it_and_its_faces
);

async fn listing_pages_through_identities_by_external_id(db: TestDb) {
    let store = open(&db).await;
    let mut gallery_id = 0;
    for who in ["dave", "alice", "carol", "bob"] {
        gallery_id = store
            .enroll(&enrollment("g", who, vec![face(0.5, false)]))
            .await
            .expect("enroll")
            .gallery_id;
    }
    let first = store.identities(gallery_id, None, 3).await.expect("page 1");
    let names: Vec<_> = first.iter().map(|i| i.external_id.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert!(first.iter().all(|i| i.face_count == 1));
    let second = store
        .identities(gallery_id, Some("carol"), 3)
        .await
        .expect("page 2");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].external_id, "dave");
}
on_both_backends!(
    listing_pages_through_identities_by_external_id,
    super::listing_pages_through_identities_by_external_id
);

async fn deleting_one_face_leaves_the_identity_and_its_other_faces(db: TestDb) {
    let store = open(&db).await;
    let alice = store
        .enroll(&enrollment(
            "g",
            "alice",
            vec![face(0.1, false), face(0.2, false)],
        ))
        .await
        .expect("enroll");
    let wrong_owner = store
        .delete_face(alice.gallery_id, "nobody", alice.face_ids[0])
        .await
        .expect("delete");
    assert_eq!(wrong_owner, None);
    let owner = store
        .delete_face(alice.gallery_id, "alice", alice.face_ids[0])
        .await
        .expect("delete");
    assert_eq!(owner, Some(alice.identity_id));
    let detail = store
        .identity(alice.gallery_id, "alice")
        .await
        .expect("query")
        .expect("alice still exists");
    assert_eq!(detail.faces.len(), 1);
    assert_eq!(detail.faces[0].id, alice.face_ids[1]);
}
on_both_backends!(
    deleting_one_face_leaves_the_identity_and_its_other_faces,
    super::deleting_one_face_leaves_the_identity_and_its_other_faces
);

async fn galleries_keep_their_threshold_override(db: TestDb) {
    let store = open(&db).await;
    assert_eq!(store.gallery("staff").await.expect("query"), None);
    let created = store
        .put_gallery("staff", Some(0.75), Some(0.001))
        .await
        .expect("create");
    let updated = store
        .put_gallery("staff", None, None)
        .await
        .expect("update");
    assert_eq!(created.id, updated.id);
    assert_eq!(created.threshold, Some(0.75));
    assert_eq!(created.far, Some(0.001));
    assert_eq!(updated.threshold, None);
    assert_eq!(updated.far, None);
    let all = store.galleries().await.expect("list");
    assert_eq!(all, vec![updated]);
}
on_both_backends!(
    galleries_keep_their_threshold_override,
    super::galleries_keep_their_threshold_override
);

async fn reembedding_replaces_stale_embeddings_that_have_images(db: TestDb) {
    let store = open(&db).await;
    let enrolled = store
        .enroll(&enrollment(
            "g",
            "alice",
            vec![face(0.1, true), face(0.2, false)],
        ))
        .await
        .expect("enroll");
    assert_eq!(
        store.model_versions().await.expect("versions"),
        [("v1".to_string(), 2)]
    );
    assert_eq!(
        store.count_stale_without_image("v2").await.expect("count"),
        1
    );
    let stale = store.stale_images_page("v2", 0, 10).await.expect("page");
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].face_id, enrolled.face_ids[0]);
    let unit_x = Embedding::new(vec![1.0, 0.0]).expect("a unit vector");
    store
        .replace_embeddings("v2", &[(stale[0].face_id, unit_x)])
        .await
        .expect("replace");
    let versions = store.model_versions().await.expect("versions");
    assert_eq!(versions, [("v1".to_string(), 1), ("v2".to_string(), 1)]);
    assert!(
        store
            .stale_images_page("v2", 0, 10)
            .await
            .expect("page")
            .is_empty()
    );
}
on_both_backends!(
    reembedding_replaces_stale_embeddings_that_have_images,
    super::reembedding_replaces_stale_embeddings_that_have_images
);

#[tokio::test]
async fn a_reopened_sqlite_file_still_holds_every_enrollment() {
    let db = TestDb::sqlite();
    let enrolled = {
        let store = open(&db).await;
        let enrolled = store
            .enroll(&enrollment("g", "alice", vec![face(0.4, false)]))
            .await
            .expect("enroll");
        let wal = db.url.trim_start_matches("sqlite://").to_owned() + "-wal";
        assert!(
            std::path::Path::new(&wal).exists(),
            "the database runs in WAL mode, so {wal} exists while it is open"
        );
        store.close().await;
        enrolled
    };
    let store = open(&db).await;
    let page = store
        .faces_page(enrolled.gallery_id, 0, 10)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|f| f.id).collect::<Vec<_>>(),
        enrolled.face_ids
    );
}
