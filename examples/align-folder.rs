//! Writes the aligned face crops of a folder of identity sub-folders, as the server and
//! `train-embed --detect` cut them: for each image, the embeddable face nearest the
//! image centre, aligned to the 96×112 template, saved as PNG under the same
//! `<identity>/<name>` path. Images without such a face are listed and skipped.
//! Training on the output is `train-embed --detect` without redoing detection each run.
//!
//! ```sh
//! cargo run --release --example align-folder -- ../shared/data/lfw data/lfw-aligned
//! ```

use std::path::PathBuf;

use faceprint::data::{ImageFolder, Pick, face_crop};
use faceprint::detect::{DetectConfig, FaceDetector};
use rayon::prelude::*;

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: align-folder INPUT_DIR OUTPUT_DIR");
        std::process::exit(2);
    };
    let folder = ImageFolder::scan_with(input, &faceprint::data::ScanOptions { min_images: 1 })
        .unwrap_or_else(|e| {
            eprintln!("{}: {e}", input.display());
            std::process::exit(1);
        });
    let detector = FaceDetector::new(DetectConfig::default()).expect("default detector");
    let missing: Vec<String> = (0..folder.len())
        .into_par_iter()
        .filter_map(|i| {
            let image = &folder.images()[i];
            let path = &folder.paths()[i];
            let Some(crop) = face_crop(&detector, image, Pick::NearestCentre) else {
                return Some(path.display().to_string());
            };
            let identity = &folder.identities()[folder.labels()[i]];
            let dir = output.join(identity);
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            let target = dir.join(format!("{}.png", name.unwrap_or_default()));
            let saved = std::fs::create_dir_all(&dir)
                .map_err(|e| e.to_string())
                .and_then(|()| crop.save(&target).map_err(|e| e.to_string()));
            saved.err().map(|e| format!("{}: {e}", target.display()))
        })
        .collect();
    for m in &missing {
        eprintln!("no face: {m}");
    }
    println!(
        "{} of {} images aligned into {}",
        folder.len() - missing.len(),
        folder.len(),
        output.display()
    );
}
