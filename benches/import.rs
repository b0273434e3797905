//! The CPU a bulk import spends on one face crop (`faceprint-server import` with
//! `detect=false`, the shipped model): the crop's landmarks and alignment (MTCNN), then
//! the embedding, `PASS` aligned crops per forward pass as the import runs them. One
//! rayon thread, as each of the import's workers runs its own faces: milliseconds of one
//! core per face, so `1000 / (align + embed) × cores` bounds the import's faces/s. Then
//! the embedding again on two threads, as the import spreads its passes, in core time a
//! face.
//!
//! Run: `cargo bench --bench import`. `FACEPRINT_BENCH_SECONDS` sets the time per
//! figure (default 5). Inputs: the twelve ORL crops of `tests/fixtures/server` and the
//! Yale B crops of `tests/fixtures/detect`. `FACEPRINT_BENCH_PROFILE=1` also prints the
//! time of each layer of the network for one pass of `PASS` aligned crops.

use std::path::Path;
use std::time::Duration;

#[path = "support/profile.rs"]
mod profile;
mod support;

use faceprint::detect::{FaceDetector, align::align_in};
use faceprint::model::{Embedder, ModelFile};
use image::GrayImage;
use ndarray::Axis;

/// Crops per forward pass: the import's `EMBED_PART` (`src/server/import/prepare.rs`).
/// The engine groups a pass's images for its threads, so on one thread the grouping can
/// differ from the import's two: Winograd's groups (`winograd_images`) are the same at
/// sixteen a pass, while the column products of the smallest maps (`images_per_product`)
/// may take more images a product there; the two-thread figure groups as the import.
const PASS: usize = 16;

fn crops() -> Vec<GrayImage> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = (1..=4)
        .flat_map(|s| (1..=3).map(move |i| format!("server/s{s}/{i}.png")))
        .chain([
            "detect/yale_yaleB06.pgm".into(),
            "detect/yale_yaleB09.pgm".into(),
        ])
        .chain([
            "detect/yale_yaleB10.pgm".into(),
            "detect/yale_yaleB06_tight.pgm".into(),
        ])
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| match image::open(root.join(p)) {
            Ok(image) => image.to_luma8(),
            Err(e) => panic!("fixture {p}: {e}"),
        })
        .collect()
}

fn main() {
    let budget = support::budget();
    println!("load average: {}", support::load_average());
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    let embedder = Embedder::load(&model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let config = embedder.meta().detector.clone().unwrap_or_default();
    let detector = FaceDetector::new(config)
        .unwrap_or_else(|e| panic!("detector: {e}"))
        .with_frame(embedder.meta().frame);
    let crops = crops();
    let aligned = pool(1).install(|| {
        // As the import reads a crop: its landmarks, then the warp into the model's frame.
        let align = |crop: &GrayImage| {
            detector
                .crop_landmarks(crop)
                .and_then(|p| align_in(crop, &p.map(|p| [p.x, p.y]), detector.frame()))
                .unwrap_or_else(|| crop.clone())
        };
        let aligned: Vec<GrayImage> = crops.iter().map(align).collect();
        let per_face = |total_ms: f64| total_ms / crops.len() as f64;
        let landmarks = median_ms(budget, || {
            for crop in &crops {
                std::hint::black_box(align(std::hint::black_box(crop)));
            }
        });
        let embed = median_ms(budget, || {
            for part in aligned.chunks(PASS) {
                std::hint::black_box(embedder.embed(std::hint::black_box(part)).ok());
            }
        });
        let (landmarks, embed) = (per_face(landmarks), per_face(embed));
        println!(
            "one core, ms per face ({} crops): landmarks and alignment {landmarks:.2}, \
             embedding {embed:.2}, total {:.2} (≤ {:.0} faces/s a core)",
            crops.len(),
            landmarks + embed,
            1000.0 / (landmarks + embed)
        );
        if std::env::var("FACEPRINT_BENCH_PROFILE").is_ok_and(|v| v == "1") {
            profile_embedding(&model, &aligned[..PASS.min(aligned.len())]);
        }
        aligned
    });
    two_threads(budget, &embedder, &aligned);
}

/// The embedding as the import runs it on two threads: passes of `PASS` crops spread
/// over the pool, each seeing both threads (so the engine groups as in the import), for
/// eight times the crops. Wall-clock milliseconds per face, times two: the core time a
/// face costs when both cores embed, to set beside the one-thread figure.
fn two_threads(budget: Duration, embedder: &Embedder, aligned: &[GrayImage]) {
    use rayon::prelude::*;
    let crops: Vec<GrayImage> = (0..8).flat_map(|_| aligned.iter().cloned()).collect();
    let wall = pool(2).install(|| {
        median_ms(budget, || {
            crops.par_chunks(PASS).for_each(|part| {
                std::hint::black_box(embedder.embed(std::hint::black_box(part)).ok());
            });
        })
    });
    println!(
        "two threads, passes of {PASS} spread over both: embedding {:.2} ms of core time a face",
        2.0 * wall / crops.len() as f64
    );
}

/// A rayon pool of `threads` threads.
fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap_or_else(|e| panic!("thread pool: {e}"))
}

/// The embedding network's time per layer for one pass over `crops`, preprocessed as
/// `Embedder::embed` does.
fn profile_embedding(model: &Path, crops: &[GrayImage]) {
    let file = ModelFile::load(model).unwrap_or_else(|e| panic!("{}: {e}", model.display()));
    let inputs: Vec<_> = crops
        .iter()
        .map(|c| match file.meta.preprocessing.apply_grey(c) {
            Ok(a) => a.insert_axis(Axis(0)),
            Err(e) => panic!("preprocessing: {e}"),
        })
        .collect();
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let batch = ndarray::stack(Axis(0), &views).unwrap_or_else(|e| panic!("stack: {e}"));
    profile::profile_infer(&file.net, &batch.into_dyn()).unwrap_or_else(|e| panic!("profile: {e}"));
}

/// The median of `run`'s times in milliseconds over `budget` (at least 5 runs).
fn median_ms(budget: Duration, run: impl FnMut()) -> f64 {
    let times = support::times_ms(budget, run);
    times[times.len() / 2]
}
