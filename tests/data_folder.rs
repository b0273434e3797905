//! `ImageFolder::scan` on the committed fixtures (tests/fixtures/faces: 4 ORL + 4 Yale B
//! identities × 5 images, PGM/PNG/JPEG/BMP/WebP, plus three broken files and hidden
//! entries) and on folders built in a temporary directory for the error cases.

use std::fs;
use std::path::{Path, PathBuf};

use faceprint::data::{DataError, ImageFolder, ScanOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces")
}

/// Copies `n` images of each named fixture identity into a fresh temporary folder.
fn folder_with(identities: &[(&str, usize)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, n) in identities {
        let target = dir.path().join(name);
        fs::create_dir(&target).expect("identity folder");
        let mut sources: Vec<PathBuf> = fs::read_dir(fixtures().join("orl_s4"))
            .expect("fixture folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "pgm"))
            .collect();
        sources.sort();
        for source in sources.iter().take(*n) {
            fs::copy(source, target.join(source.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

#[test]
fn scan_decodes_every_committed_format_in_sorted_order() {
    let folder = ImageFolder::scan(fixtures()).expect("fixtures scan");
    let names: Vec<&str> = folder.identities().iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "orl_s1",
            "orl_s2",
            "orl_s3",
            "orl_s4",
            "yaleb_B02",
            "yaleb_B03",
            "yaleb_B04",
            "yaleb_B05"
        ]
    );
    assert_eq!(folder.len(), 40, "8 identities × 5 images");
    for (label, members) in folder.by_identity().iter().enumerate() {
        assert_eq!(members.len(), 5, "identity {}", folder.identities()[label]);
    }
    for ext in ["pgm", "png", "jpg", "bmp", "webp"] {
        let decoded = folder
            .paths()
            .iter()
            .zip(folder.images())
            .filter(|(p, _)| p.extension().is_some_and(|e| e == ext))
            .inspect(|(p, image)| {
                assert!(
                    image.width() > 40 && image.height() == 56,
                    "{}",
                    p.display()
                )
            })
            .count();
        assert!(decoded > 0, "no .{ext} image decoded");
    }
    let mut sorted = folder.paths().to_vec();
    sorted.sort();
    assert_eq!(folder.paths(), sorted.as_slice());
}

#[test]
fn broken_files_are_skipped_and_counted_in_one_report() {
    let folder = ImageFolder::scan(fixtures()).expect("fixtures scan");
    let report = folder.report();
    let broken: Vec<String> = report
        .undecodable
        .iter()
        .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(broken, ["empty.pgm", "not-an-image.jpg", "truncated.png"]);
    let message = report.message(folder.root()).expect("a message");
    assert!(
        message.contains("skipped 3 undecodable file(s)"),
        "{message}"
    );
    assert!(message.contains("truncated.png"), "{message}");
}

#[test]
fn hidden_files_and_folders_are_ignored() {
    let folder = ImageFolder::scan(fixtures()).expect("fixtures scan");
    assert!(!folder.identities().iter().any(|n| n.starts_with('.')));
    for path in folder.paths() {
        let hidden = path
            .strip_prefix(fixtures())
            .expect("under root")
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        assert!(!hidden, "{} is hidden", path.display());
    }
    assert!(
        !folder
            .report()
            .undecodable
            .iter()
            .any(|(p, _)| p.ends_with(".DS_Store")),
        "a hidden file was decoded"
    );
}

#[test]
fn an_empty_folder_is_an_error_naming_the_count() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let err = ImageFolder::scan(dir.path()).expect_err("empty folder");
    assert!(
        matches!(err, DataError::TooFewIdentities { found: 0, .. }),
        "{err}"
    );
}

#[test]
fn a_single_identity_is_an_error() {
    let dir = folder_with(&[("alice", 3)]);
    let err = ImageFolder::scan(dir.path()).expect_err("one identity");
    assert!(
        matches!(
            err,
            DataError::TooFewIdentities {
                found: 1,
                need: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("found 1 usable identities"),
        "{err}"
    );
}

#[test]
fn identities_with_one_image_are_left_out_with_a_message() {
    let dir = folder_with(&[("alice", 3), ("bob", 1), ("carol", 2), ("dave", 0)]);
    fs::write(dir.path().join("stray.pgm"), b"P5").expect("write");
    let folder = ImageFolder::scan(dir.path()).expect("two usable identities");
    assert_eq!(folder.identities(), ["alice", "carol"]);
    assert_eq!(folder.labels(), [0, 0, 0, 1, 1]);
    let report = folder.report();
    assert_eq!(
        report.left_out,
        [("bob".to_string(), 1), ("dave".to_string(), 0)]
    );
    assert_eq!(report.loose_files, 1);
    let message = report.message(folder.root()).expect("a message");
    assert!(message.contains("bob (1 image(s))"), "{message}");

    let lenient = ScanOptions { min_images: 1 };
    let folder = ImageFolder::scan_with(dir.path(), &lenient).expect("scan");
    assert_eq!(folder.identities(), ["alice", "bob", "carol"]);
}

#[test]
fn a_missing_root_is_an_error() {
    let err = ImageFolder::scan(fixtures().join("no-such-folder")).expect_err("missing");
    assert!(matches!(err, DataError::NotADirectory { .. }), "{err}");
}

#[test]
fn splits_and_merges_keep_identities_apart_and_relabel() {
    let folder = ImageFolder::scan(fixtures()).expect("fixtures scan");
    let (train, val) = folder
        .split(faceprint::data::SplitSize::Count(3), 7)
        .expect("split");
    assert_eq!((train.identities().len(), val.identities().len()), (5, 3));
    assert_eq!(train.len() + val.len(), folder.len());
    assert!(
        val.identities()
            .iter()
            .all(|n| !train.identities().contains(n))
    );
    for part in [&train, &val] {
        for (path, &label) in part.paths().iter().zip(part.labels()) {
            let folder_name = path.parent().and_then(|p| p.file_name()).expect("parent");
            assert_eq!(folder_name.to_string_lossy(), part.identities()[label]);
        }
    }
    let merged = ImageFolder::merge(&[train.clone(), val.clone()]).expect("merge");
    assert_eq!(merged.identities().len(), 8);
    assert_eq!(
        merged.identities()[0],
        format!("faces/{}", train.identities()[0])
    );
    assert_eq!(
        merged.labels()[train.len()],
        5,
        "second folder's labels follow"
    );
}
