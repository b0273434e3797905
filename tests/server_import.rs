//! `faceprint-server import DIR`: a folder per identity enrolled into a gallery; a second
//! run, or a run after an interruption, adds exactly what is missing; bad input is a
//! clear error. On SQLite, and PostgreSQL when `FACEPRINT_TEST_DATABASE_URL` is set.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use faceprint::server::{ImportOptions, import};
use faceprint::store::Store;
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::{face, model_path};

const WHO: [&str; 4] = ["s1", "s2", "s3", "s4"];

/// `dir/person-<who>/<n>.png` for the fixture faces `n` in `images`.
fn write_tree(dir: &Path, images: &[u32]) {
    for who in WHO {
        let folder = dir.join(format!("person-{who}"));
        std::fs::create_dir_all(&folder).unwrap();
        for &n in images {
            std::fs::write(folder.join(format!("{n}.png")), face(who, n)).unwrap();
        }
    }
}

fn options() -> ImportOptions {
    ImportOptions {
        gallery: "default".into(),
        detect: false,
        progress: false,
    }
}

/// Every stored `(identity, image hash)` of the default gallery; panics on a duplicate.
async fn stored_faces(url: &str) -> HashSet<(String, String)> {
    let store = Store::connect(url, 2).await.unwrap();
    let all = store.gallery_image_hashes("default").await.unwrap();
    store.close().await;
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), all.len(), "a face was stored twice");
    unique
}

async fn import_twice_then_identify(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[1, 2, 3]);
    let folder = dir.path().join("person-s1");
    // A copy under another name, a file that is no image, a file beside the folders.
    std::fs::write(folder.join("copy-of-1.png"), face("s1", 1)).unwrap();
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    std::fs::write(dir.path().join("README"), "stray").unwrap();
    let settings = test_settings(&db);

    let first = import(&settings, dir.path(), &options()).await.unwrap();
    assert_eq!(first.identities, 4);
    assert_eq!(first.faces_added, 12);
    assert_eq!(first.already_stored, 1, "the copy is the same face");
    assert_eq!(first.skipped.len(), 1, "{:?}", first.skipped);
    assert!(first.skipped[0].0.ends_with("notes.txt"));
    assert_eq!(first.stray_files, 1);
    assert_eq!(stored_faces(&db.url).await.len(), 12);

    let second = import(&settings, dir.path(), &options()).await.unwrap();
    assert_eq!(second.faces_added, 0);
    assert_eq!(second.already_stored, 13);
    assert_eq!(stored_faces(&db.url).await.len(), 12);

    let app = TestApp::spawn(db).await;
    let (status, body) = json_of(app.identify(&face("s2", 2)).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"]["identity"], "person-s2", "{body}");
    let (status, body) = json_of(app.get_identity("person-s3").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"].as_array().map(Vec::len), Some(3), "{body}");
}
on_both_backends!(
    importing_twice_stores_each_face_once_and_the_server_finds_them,
    super::import_twice_then_identify
);

async fn a_partial_import_is_completed_by_the_next_run(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&db);
    // What an interrupted run leaves: some identities with some of their faces.
    write_tree(dir.path(), &[2]);
    std::fs::remove_dir_all(dir.path().join("person-s4")).unwrap();
    let partial = import(&settings, dir.path(), &options()).await.unwrap();
    assert_eq!(partial.faces_added, 3);

    write_tree(dir.path(), &[1, 2, 3]);
    let rest = import(&settings, dir.path(), &options()).await.unwrap();
    assert_eq!((rest.faces_added, rest.already_stored), (9, 3));
    let stored = stored_faces(&db.url).await;
    assert_eq!(stored.len(), 12);
    for who in WHO {
        let n = stored
            .iter()
            .filter(|(id, _)| *id == format!("person-{who}"))
            .count();
        assert_eq!(n, 3, "person-{who}");
    }
}
on_both_backends!(
    a_partial_import_is_completed_by_the_next_run_test,
    super::a_partial_import_is_completed_by_the_next_run
);

async fn with_detection_photographs_are_cropped_and_a_faceless_one_is_skipped(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("eileen");
    std::fs::create_dir_all(&folder).unwrap();
    let detect = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detect");
    for name in ["astronaut.jpg", "coffee.jpg"] {
        std::fs::copy(detect.join(name), folder.join(name)).unwrap();
    }
    let settings = test_settings(&db);
    let options = ImportOptions {
        detect: true,
        ..options()
    };
    let report = import(&settings, dir.path(), &options).await.unwrap();
    assert_eq!(report.faces_added, 1);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(report.skipped[0].0.ends_with("coffee.jpg"));
    assert_eq!(report.skipped[0].1, "no face found");

    // The face is known by its file's hash (what a resumed run compares), and the crop
    // is stored for re-embedding.
    let app = TestApp::spawn(db).await;
    let (status, body) = json_of(app.get_identity("eileen").await).await;
    assert_eq!(status, 200, "{body}");
    let photo = std::fs::read(detect.join("astronaut.jpg")).unwrap();
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&photo));
    assert_eq!(body["faces"][0]["image_sha256"], sha256.as_str(), "{body}");
    assert_eq!(body["faces"][0]["has_image"], true, "{body}");
}
on_both_backends!(
    with_detection_photographs_are_cropped_and_a_faceless_one_is_skipped_test,
    super::with_detection_photographs_are_cropped_and_a_faceless_one_is_skipped
);

fn import_command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_faceprint-server"));
    command
        .arg("import")
        .args(args)
        .env("FACEPRINT_DATABASE__URL", url)
        .env("FACEPRINT_MODEL__PATH", model_path())
        .env("RUST_LOG", "warn");
    command
}

/// 60 identities × 5 faces, each file distinct (fixture pixels shifted by its number).
fn write_large_tree(dir: &Path) -> usize {
    let mut files = 0;
    for i in 0..60u32 {
        let base = image::load_from_memory(&face(WHO[i as usize % 4], 1 + i % 3))
            .unwrap()
            .to_luma8();
        let folder = dir.join(format!("id-{i:03}"));
        std::fs::create_dir_all(&folder).unwrap();
        for j in 0..5u32 {
            let mut img = base.clone();
            img.pixels_mut()
                .for_each(|p| p.0[0] = p.0[0].wrapping_add((i * 5 + j) as u8));
            img.save(folder.join(format!("{j}.png"))).unwrap();
            files += 1;
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_part_way_resumes_without_duplicates() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let files = write_large_tree(dir.path());
    let path = dir.path().to_str().unwrap();
    let mut child = import_command(&db.url, &[path])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as something is stored (or whenever it has finished).
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let stored = match Store::connect(&db.url, 1).await {
            Ok(store) => {
                let n = store
                    .gallery_image_hashes("default")
                    .await
                    .map_or(0, |h| h.len());
                store.close().await;
                n
            }
            Err(_) => 0, // not created yet
        };
        if stored > 0 {
            child.kill().unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.wait().unwrap();
    let before = stored_faces(&db.url).await.len();
    // Every identity is either complete or absent: its faces are one transaction.
    let output = import_command(&db.url, &[path]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("imported {} face(s)", files - before)),
        "{stdout}"
    );
    assert_eq!(stored_faces(&db.url).await.len(), files);
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let db = TestDb::sqlite();
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let blank = root.path().join("blank");
    std::fs::create_dir_all(blank.join("   ")).unwrap();
    let good = root.path().join("good");
    write_tree(&good, &[1]);
    let missing = root.path().join("missing");
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "missing folder",
            vec![missing.to_str().unwrap()],
            "not a directory",
        ),
        ("a file", vec![file.to_str().unwrap()], "not a directory"),
        (
            "no identities",
            vec![empty.to_str().unwrap()],
            "no identity folders",
        ),
        (
            "blank identity",
            vec![blank.to_str().unwrap()],
            "not a valid identity",
        ),
        (
            "bad gallery",
            vec![good.to_str().unwrap(), "--gallery", "no spaces allowed"],
            "invalid gallery name",
        ),
        ("no folder given", vec![], "DIR"),
    ];
    for (what, args, expected) in cases {
        let output = import_command(&db.url, &args).output().unwrap();
        let err = stderr(&output);
        assert!(!output.status.success(), "{what}: succeeded");
        assert!(err.contains(expected), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

/// As the server: the model's error first when neither the model nor the database can
/// be opened, and nothing imported.
#[tokio::test]
async fn an_import_with_a_missing_model_names_it_whatever_the_database() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[1]);
    let db = TestDb::sqlite();
    let unusable = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    for url in [db.url.clone(), unusable] {
        let mut settings = test_settings(&db);
        settings.model.path = dir.path().join("missing.safetensors");
        settings.database.url = faceprint::server::Secret::new(url);
        let error = import(&settings, dir.path(), &options())
            .await
            .expect_err("no model, no import")
            .to_string();
        assert!(error.contains("missing.safetensors"), "{error}");
    }
    assert!(stored_faces(&db.url).await.is_empty());
    // Nor is a database file created for it.
    let fresh = dir.path().join("fresh.db");
    let mut settings = test_settings(&db);
    settings.model.path = dir.path().join("missing.safetensors");
    settings.database.url = faceprint::server::Secret::new(format!("sqlite://{}", fresh.display()));
    let error = import(&settings, dir.path(), &options())
        .await
        .expect_err("no model, no import")
        .to_string();
    assert!(error.contains("missing.safetensors"), "{error}");
    assert!(
        !fresh.exists(),
        "a database file was created for a missing model"
    );
}
