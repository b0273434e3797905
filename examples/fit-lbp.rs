//! Fits a descriptor branch (`faceprint::model::lbp`) on a folder of face crops and
//! fuses it into an existing model, without retraining the network: the quick way to
//! compare branch settings on one trained network. `train-embed`'s `[lbp]` section does
//! the same at the end of a run and also calibrates the thresholds on the fused
//! embeddings; here they are left as they were (refresh them with `eval-embed
//! --calibrate-into`).
//!
//! ```sh
//! cargo run --release --example fit-lbp -- MODEL CROPS_DIR OUT [WEIGHT [PCA [DIM]]]
//! ```

use std::path::PathBuf;

use faceprint::data::{ImageFolder, ScanOptions};
use faceprint::model::ModelFile;
use faceprint::model::lbp::{LbpBranch, describe};
use faceprint::train::config::LbpConfig;
use ndarray::Array2;
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: fit-lbp MODEL CROPS_DIR OUT [WEIGHT [PCA [DIM]]]");
        std::process::exit(2);
    }
    let fail = |m: String| -> ! {
        eprintln!("fit-lbp: {m}");
        std::process::exit(1)
    };
    let num = |i: usize| {
        args.get(i).map(|v| {
            v.parse::<f64>()
                .unwrap_or_else(|e| fail(format!("{v}: {e}")))
        })
    };
    let mut cfg = LbpConfig::default();
    if let Some(w) = num(3) {
        cfg.weight = w as f32;
    }
    if let Some(p) = num(4) {
        cfg.pca = p as usize;
    }
    if let Some(d) = num(5) {
        cfg.dim = d as usize;
    }
    let model = ModelFile::load(&PathBuf::from(&args[0])).unwrap_or_else(|e| fail(e.to_string()));
    let folder = ImageFolder::scan_with(&args[1], &ScanOptions { min_images: 1 })
        .unwrap_or_else(|e| fail(format!("{}: {e}", args[1])));
    let spec = cfg.spec();
    let rows: Vec<Vec<f32>> = folder
        .images()
        .par_iter()
        .map(|f| describe(f, &spec))
        .collect();
    let x = Array2::from_shape_vec((rows.len(), spec.raw_dim()), rows.concat())
        .unwrap_or_else(|e| fail(e.to_string()));
    let branch = LbpBranch::fit(
        spec,
        x.view(),
        folder.labels(),
        cfg.pca,
        cfg.max_pca_samples,
    )
    .unwrap_or_else(|e| fail(e.to_string()));
    let out = PathBuf::from(&args[2]);
    model
        .with_lbp(branch)
        .save(&out)
        .unwrap_or_else(|e| fail(e.to_string()));
    eprintln!(
        "wrote {} ({} faces of {} identities described)",
        out.display(),
        folder.len(),
        folder.identities().len()
    );
}
