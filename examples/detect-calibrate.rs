//! Measures how the embedding model's training crops frame a face, relative to the
//! detector's box: the numbers behind `DetectConfig`'s `crop_width`, `crop_height` and
//! `crop_shift_y` defaults. For each folder of identity sub-folders it runs the detector
//! on up to 400 evenly spaced images and prints the share with a face and the medians,
//! over the largest face per image, of `image width / s`, `image height / s` and
//! `(image centre y − box centre y) / s` with `s` the box size.
//!
//! Database crops can be tighter than the detector's box (Yale B's are): a box cut by
//! the image border would bias the figures, and SeetaFace rarely finds a face that fills
//! its image at all. So each image is first framed by a 40% border of its own edge
//! pixels on every side, as if it were part of a larger picture.
//!
//! ```sh
//! cargo run --release --example detect-calibrate -- ../shared/data/orl ../shared/data/yaleb
//! ```

use std::path::PathBuf;

use faceprint::data::ImageFolder;
use faceprint::detect::{DetectConfig, FaceDetector};
use image::{GrayImage, Luma};
use rayon::prelude::*;

/// Of the largest face in one image: width/s, height/s, shift y, shift x, faces found.
type Measure = (f64, f64, f64, f64, usize);

/// Images measured per folder, evenly spaced.
const SAMPLE: usize = 400;

/// `image` inside a border of `pad` pixels repeating its edge pixels.
fn framed(image: &GrayImage, pad: u32) -> GrayImage {
    let (w, h) = image.dimensions();
    GrayImage::from_fn(w + 2 * pad, h + 2 * pad, |x, y| {
        let sx = x.saturating_sub(pad).min(w - 1);
        let sy = y.saturating_sub(pad).min(h - 1);
        Luma([image.get_pixel(sx, sy)[0]])
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folders: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if folders.is_empty() {
        return Err("usage: detect-calibrate FOLDER...".into());
    }
    let detector = FaceDetector::new(DetectConfig::default())?;
    for root in folders {
        let folder = ImageFolder::scan(&root)?;
        let step = folder.len().div_ceil(SAMPLE).max(1);
        let sample: Vec<&GrayImage> = folder.images().iter().step_by(step).collect();
        let found: Vec<Option<Measure>> = sample
            .par_iter()
            .map(|image| {
                let pad = image.width().max(image.height()) * 2 / 5;
                let faces = detector.detect(&framed(image, pad));
                let face = faces.first()?;
                let s = f64::from(face.width.max(face.height));
                let (w, h) = (f64::from(image.width()), f64::from(image.height()));
                let cx = f64::from(face.x) - f64::from(pad) + f64::from(face.width) / 2.0;
                let cy = f64::from(face.y) - f64::from(pad) + f64::from(face.height) / 2.0;
                Some((
                    w / s,
                    h / s,
                    (h / 2.0 - cy) / s,
                    (w / 2.0 - cx) / s,
                    faces.len(),
                ))
            })
            .collect();
        let hits: Vec<_> = found.iter().flatten().collect();
        println!(
            "{}: {} images, a face in {} ({:.1}%), more than one in {}",
            root.display(),
            found.len(),
            hits.len(),
            100.0 * hits.len() as f64 / found.len().max(1) as f64,
            hits.iter().filter(|h| h.4 > 1).count()
        );
        println!(
            "  median width/s {:.3}  height/s {:.3}  shift_y {:.3}  shift_x {:.3}",
            median(hits.iter().map(|h| h.0).collect()),
            median(hits.iter().map(|h| h.1).collect()),
            median(hits.iter().map(|h| h.2).collect()),
            median(hits.iter().map(|h| h.3).collect()),
        );
    }
    Ok(())
}
