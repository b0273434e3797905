//! Start-up and shut-down: model-version checks, re-embedding, signals.

mod support;

use faceprint::detect::{DetectConfig, FaceDetector, Frame, crop_face_in};
use faceprint::embedding::Embedding;
use faceprint::server::{Application, reembed};
use faceprint::store::{NewEnrollment, NewFace, Store};
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::face;
use support::process::ServerProcess;

/// What `/enroll` stored for a model that reads the 96×112 frame (as the models
/// `train-embed` trains do): the aligned crop of the detected face, as PNG.
fn stored_crop(image: &[u8]) -> Vec<u8> {
    let grey = image::load_from_memory(image)
        .expect("fixture decodes")
        .to_luma8();
    let detector = FaceDetector::new(DetectConfig::default()).expect("detector");
    let faces = detector.detect(&grey);
    let crop = crop_face_in(&grey, faces.first().expect("a face"), Frame::Arcface);
    let mut png = std::io::Cursor::new(Vec::new());
    crop.write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    png.into_inner()
}

/// Store faces of fixture `who` as `identity`, as if an older model that reads the
/// 96×112 frame had embedded them.
async fn store_faces_of_another_model(db: &TestDb, identity: &str, who: &str, with_images: bool) {
    let store = Store::connect(&db.url, 1).await.expect("store");
    let faces = (1..=2)
        .map(|n| NewFace {
            embedding: Embedding::new(vec![1.0, 0.0]).expect("a unit vector"),
            image_sha256: format!("{n}"),
            image: with_images.then(|| stored_crop(&face(who, n))),
        })
        .collect();
    store
        .enroll(&NewEnrollment {
            gallery: "default".into(),
            external_id: identity.into(),
            metadata: None,
            model_version: "some-older-model".into(),
            faces,
        })
        .await
        .expect("enroll");
    store.close().await;
}

async fn the_server_refuses_to_start_on_embeddings_of_another_model(db: TestDb) {
    store_faces_of_another_model(&db, "old", "s1", false).await;
    let error = match Application::build(test_settings(&db)).await {
        Ok(_) => panic!("the server started on embeddings of another model"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("some-older-model"), "{error}");
    assert!(
        error.contains("faceprint-server reembed --model"),
        "{error}"
    );
}
on_both_backends!(
    the_server_refuses_to_start_on_embeddings_of_another_model,
    super::the_server_refuses_to_start_on_embeddings_of_another_model
);

/// The stored crops are in the other frame (96×112): reembed re-aligns them to the
/// default model's 150×150 chip, so a new photo of the person is found.
async fn reembed_recomputes_stored_faces_so_the_server_starts_and_finds_them(db: TestDb) {
    store_faces_of_another_model(&db, "alice", "s1", true).await;
    let settings = test_settings(&db);
    let report = reembed(&settings, &settings.model.path)
        .await
        .expect("reembed");
    assert_eq!(report.faces, 2);
    let app = TestApp::spawn_with(db, settings).await;
    let (status, body) = json_of(app.identify(&face("s1", 1)).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"]["identity"], "alice", "{body}");
    let (_, detail) = json_of(app.get_identity("alice").await).await;
    assert_eq!(detail["faces"][0]["model"], body["model"], "{detail}");
}
on_both_backends!(
    reembed_recomputes_stored_faces_so_the_server_starts_and_finds_them,
    super::reembed_recomputes_stored_faces_so_the_server_starts_and_finds_them
);

#[tokio::test]
async fn reembed_refuses_faces_without_stored_images() {
    let db = TestDb::sqlite();
    store_faces_of_another_model(&db, "alice", "s1", false).await;
    let settings = test_settings(&db);
    let error = reembed(&settings, &settings.model.path)
        .await
        .expect_err("no images to re-embed from");
    assert!(error.to_string().contains("2 face(s)"), "{error}");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let db = TestDb::sqlite();
    let mut server = ServerProcess::start(&db).await;
    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// The model loads while the database opens: with both unusable, the model's error is
/// the one reported (as when they were opened one after the other); with the model
/// fine, the database's. A model path that is missing, or names a file that is not a
/// model, fails before a new database file is created.
#[tokio::test]
async fn a_missing_model_is_reported_before_an_unusable_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let unusable = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let missing = dir.path().join("missing.safetensors");
    let start = |model: Option<&std::path::Path>, url: Option<&str>| {
        let mut settings = test_settings(&db);
        if let Some(model) = model {
            settings.model.path = model.to_path_buf();
        }
        if let Some(url) = url {
            settings.database.url = faceprint::server::Secret::new(url);
        }
        async move {
            match Application::build(settings).await {
                Ok(_) => panic!("the server started"),
                Err(e) => e.to_string(),
            }
        }
    };
    for url in [None, Some(unusable.as_str())] {
        let error = start(Some(&missing), url).await;
        assert_eq!(
            error.matches("missing.safetensors").count(),
            1,
            "the path named once, with the reason: {error}"
        );
        assert!(error.contains("No such file"), "{error}");
    }
    let error = start(None, Some(&unusable)).await;
    assert!(!error.contains("safetensors"), "{error}");
    assert!(error.contains("no/such/dir"), "{error}");
    // A mistyped model path leaves no new database file behind; a good model with the
    // same fresh path creates it.
    let fresh = dir.path().join("fresh.db");
    let fresh_url = format!("sqlite://{}", fresh.display());
    let error = start(Some(&missing), Some(&fresh_url)).await;
    assert!(error.contains("missing.safetensors"), "{error}");
    assert!(
        !fresh.exists(),
        "a database file was created for a missing model"
    );
    // So does a file that is not a model: an image, or a safetensors file without the
    // model's metadata, given as the model.
    let image = dir.path().join("face.jpg");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/faces/orl_s1/3.jpg"
    );
    std::fs::copy(fixture, &image).expect("copy the fixture");
    let bare = dir.path().join("bare.safetensors");
    let empty = safetensors::serialize(
        Vec::<(String, safetensors::tensor::TensorView)>::new(),
        None,
    );
    std::fs::write(&bare, empty.expect("an empty safetensors file")).expect("write");
    for not_a_model in [&image, &bare] {
        let error = start(Some(not_a_model), Some(&fresh_url)).await;
        assert!(error.contains("not a faceprint model"), "{error}");
        assert!(error.contains(&*not_a_model.to_string_lossy()), "{error}");
        assert!(
            !fresh.exists(),
            "a database file was created for {}",
            not_a_model.display()
        );
    }
    let mut settings = test_settings(&db);
    settings.database.url = faceprint::server::Secret::new(fresh_url.as_str());
    drop(Application::build(settings).await.expect("starts"));
    assert!(fresh.exists());
}
