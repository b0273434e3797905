//! How the detector sees a folder of identity sub-folders: the share of images with a
//! face (the one nearest the centre), the median landmark positions as fractions of
//! the image (how the folder frames a face, against the 96×112 template's), and the
//! mean landmark positions relative to the detector's box (the numbers behind
//! `crop.rs`'s `MEAN_LANDMARKS`, used for boxes given without landmarks).
//!
//! ```sh
//! cargo run --release --example detect-calibrate -- ../shared/data/orl ../shared/data/yaleb ../shared/data/lfw
//! ```

use std::path::PathBuf;

use faceprint::data::ImageFolder;
use faceprint::detect::{DetectConfig, FRAME_HEIGHT, FRAME_WIDTH, FaceBox, FaceDetector, TEMPLATE};
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

fn main() {
    let detector = FaceDetector::new(DetectConfig::default()).expect("default detector");
    for dir in std::env::args().skip(1).map(PathBuf::from) {
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
        println!(
            "{}: a face in {} of {} images ({:.2}%)",
            dir.display(),
            faces.len(),
            picked.len(),
            100.0 * faces.len() as f64 / picked.len() as f64
        );
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
