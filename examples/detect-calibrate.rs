//! How the detector sees a folder of identity sub-folders: the share of images with a
//! face (the one nearest the centre), the median landmark positions as fractions of
//! the image (how the folder frames a face, against the 96×112 template's), and the
//! mean landmark positions relative to the detector's box (the numbers behind
//! `crop.rs`'s `MEAN_LANDMARKS`, used for boxes given without landmarks).
//!
//! With `--face-free DIR`, it also counts "faces" found where there should be none: in
//! the 70×70 corners of every image of DIR (one corner per image, in turn), enlarged to
//! 140×140 — patches of photographs shaped like face crops, some holding part of a
//! person. Each count is also given per half of the identities (even and odd labels), so
//! a setting chosen on one half can be judged on the other.
//!
//! ```sh
//! cargo run --release --example detect-calibrate -- ../shared/data/orl ../shared/data/yaleb ../shared/data/lfw
//! cargo run --release --example detect-calibrate -- --face-free ../shared/data/lfw ../shared/data/yaleb
//! ```
//!
//! `--no-tight-crops` first turns the detector's tight-crop look off (the cascade and
//! its second look only).

use std::path::PathBuf;

use faceprint::data::ImageFolder;
use faceprint::detect::{DetectConfig, FRAME_HEIGHT, FRAME_WIDTH, FaceBox, FaceDetector, TEMPLATE};
use image::{GrayImage, imageops};
use rayon::prelude::*;

/// Images measured per folder at most, evenly spaced.
const SAMPLE: usize = 2000;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Patches of face-free background: corner `i mod 4` of image `i`, 70×70, enlarged to
/// 140×140 (images under 70 pixels on a side are left out).
fn corner_patch(image: &GrayImage, i: usize) -> Option<GrayImage> {
    const SIDE: u32 = 70;
    let (w, h) = image.dimensions();
    if w < SIDE || h < SIDE {
        return None;
    }
    let (x, y) = match i % 4 {
        0 => (0, 0),
        1 => (w - SIDE, 0),
        2 => (0, h - SIDE),
        _ => (w - SIDE, h - SIDE),
    };
    let patch = imageops::crop_imm(image, x, y, SIDE, SIDE).to_image();
    Some(imageops::resize(
        &patch,
        2 * SIDE,
        2 * SIDE,
        imageops::FilterType::Triangle,
    ))
}

/// "k of n (p%)".
fn share(k: usize, n: usize) -> String {
    format!("{k} of {n} ({:.2}%)", 100.0 * k as f64 / n.max(1) as f64)
}

/// How many of `found` (per image: a face or not, its identity label) hold a face, in
/// all and per half of the labels.
fn halves(found: &[(bool, usize)]) -> String {
    let count = |keep: &dyn Fn(usize) -> bool| {
        let part: Vec<_> = found.iter().filter(|(_, l)| keep(*l)).collect();
        share(part.iter().filter(|(f, _)| *f).count(), part.len())
    };
    format!(
        "{}; even labels {}, odd labels {}",
        count(&|_| true),
        count(&|l| l % 2 == 0),
        count(&|l| l % 2 == 1)
    )
}

fn face_free(detector: &FaceDetector, dir: &PathBuf) {
    let folder = match ImageFolder::scan(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return;
        }
    };
    let found: Vec<(bool, usize)> = (0..folder.len())
        .into_par_iter()
        .filter_map(|i| {
            let patch = corner_patch(&folder.images()[i], i)?;
            Some((!detector.detect(&patch).is_empty(), folder.labels()[i]))
        })
        .collect();
    println!(
        "{}: a \"face\" in 140×140 corner patches: {}",
        dir.display(),
        halves(&found)
    );
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let tight_crops = args.peek().map(String::as_str) != Some("--no-tight-crops");
    if !tight_crops {
        args.next();
    }
    let config = DetectConfig {
        tight_crops,
        ..DetectConfig::default()
    };
    let detector = FaceDetector::new(config).expect("default detector");
    if args.peek().map(String::as_str) == Some("--face-free") {
        args.next();
        match args.next() {
            Some(dir) => face_free(&detector, &PathBuf::from(dir)),
            None => {
                eprintln!("--face-free needs a folder");
                std::process::exit(2);
            }
        }
    }
    for dir in args.map(PathBuf::from) {
        let folder = match ImageFolder::scan(&dir) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                continue;
            }
        };
        let step = folder.len().div_ceil(SAMPLE).max(1);
        let picked: Vec<usize> = (0..folder.len()).step_by(step).collect();
        let found: Vec<Option<(FaceBox, u32, u32)>> = picked
            .par_iter()
            .map(|&i| {
                let image = &folder.images()[i];
                let (w, h) = image.dimensions();
                let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
                detector
                    .detect(image)
                    .into_iter()
                    .min_by(|a, b| {
                        a.centre_distance(cx, cy)
                            .total_cmp(&b.centre_distance(cx, cy))
                    })
                    .map(|f| (f, w, h))
            })
            .collect();
        let faces: Vec<&(FaceBox, u32, u32)> = found.iter().flatten().collect();
        let labelled: Vec<(bool, usize)> = picked
            .iter()
            .zip(&found)
            .map(|(&i, f)| (f.is_some(), folder.labels()[i]))
            .collect();
        println!("{}: a face in {}", dir.display(), halves(&labelled));
        let names = ["left eye", "right eye", "nose", "left mouth", "right mouth"];
        for (k, name) in names.iter().enumerate() {
            let in_image = |axis: usize| {
                median(
                    faces
                        .iter()
                        .filter_map(|(f, w, h)| {
                            let p = f.landmarks?[k];
                            Some(if axis == 0 {
                                f64::from(p.x) / f64::from(*w)
                            } else {
                                f64::from(p.y) / f64::from(*h)
                            })
                        })
                        .collect(),
                )
            };
            let in_box = |axis: usize| {
                median(
                    faces
                        .iter()
                        .filter_map(|(f, _, _)| {
                            let p = f.landmarks?[k];
                            Some(if axis == 0 {
                                (f64::from(p.x) - f64::from(f.x)) / f64::from(f.width)
                            } else {
                                (f64::from(p.y) - f64::from(f.y)) / f64::from(f.height)
                            })
                        })
                        .collect(),
                )
            };
            println!(
                "  {name:12} in image ({:.3}, {:.3})  template ({:.3}, {:.3})  in box ({:.3}, {:.3})",
                in_image(0),
                in_image(1),
                f64::from(TEMPLATE[k][0]) / f64::from(FRAME_WIDTH),
                f64::from(TEMPLATE[k][1]) / f64::from(FRAME_HEIGHT),
                in_box(0),
                in_box(1)
            );
        }
    }
}
