//! The training data of a run: the identity-disjoint split, the fitted preprocessing,
//! the resized training images (augmented per batch) and the preprocessed validation set.

use image::GrayImage;
use ndarray::Array2;
use rayon::prelude::*;

use super::config::TrainConfig;
use super::error::{Result, TrainError};
use super::seed::{Stream, derive};
use crate::data::{ImageFolder, Normalisation, Preprocessing, ScanOptions, SplitSize, crop_faces};
use crate::detect::FaceDetector;
use crate::nn::Tensor;

/// Validation needs known and unknown identities, each with an enrolled and a probe image.
pub const MIN_VAL_IDENTITIES: usize = 2;

/// Everything the loop reads from the data folder.
#[derive(Debug, Clone)]
pub struct RunData {
    pub preprocessing: Preprocessing,
    /// Training images, greyscale, resized to (H, W), in [0, 1]; augmented and
    /// normalised batch by batch.
    pub train_images: Vec<Array2<f32>>,
    /// `train_labels[i]` indexes `train_identities` (0..C, the softmax classes).
    pub train_labels: Vec<usize>,
    pub train_identities: Vec<String>,
    /// Validation images, preprocessed: (N, 1, H', W').
    pub val_inputs: Tensor,
    pub val_labels: Vec<usize>,
    pub val_identities: Vec<String>,
    /// With `[lbp]`: the descriptors of the training faces `(N, raw_dim)`, in
    /// `train_labels` order, and the validation faces as they came (the branch
    /// describes the crop itself, not the network's preprocessed input).
    pub lbp: Option<(Array2<f32>, Vec<GrayImage>)>,
}

impl RunData {
    /// Scans `cfg.data`, splits identities (seeded), fits the preprocessing on the
    /// training side and prepares both sides. Errors name the folder and the counts.
    pub fn load(cfg: &TrainConfig) -> Result<RunData> {
        if !cfg.data.is_dir() {
            return Err(TrainError::io(
                &cfg.data,
                "no such directory (expected one sub-folder of images per identity)",
            ));
        }
        let min_images = if cfg.singletons { 1 } else { 2 };
        let mut folder = ImageFolder::scan_with(&cfg.data, &ScanOptions { min_images })?;
        if let Some(message) = folder.report().message(folder.root()) {
            eprintln!("warning: {message}");
        }
        if cfg.detect {
            let detector = FaceDetector::new(cfg.detector.clone())
                .map_err(|e| TrainError::Config(e.to_string()))?;
            let (cropped, report) = crop_faces(&folder, &detector, min_images, cfg.detect_pick)?;
            if let Some(message) = report.message() {
                eprintln!("warning: {message}");
            }
            folder = cropped;
        }
        // Identities with one image (kept with `singletons`) are training classes only:
        // validation needs an enrolled image and a probe of each identity.
        let (single, several): (Vec<usize>, Vec<usize>) = (0..folder.identities().len())
            .partition(|&id| folder.labels().iter().filter(|&&l| l == id).count() < 2);
        let singles = (!single.is_empty())
            .then(|| folder.subset(&single))
            .transpose()?;
        if singles.is_some() {
            folder = folder.subset(&several)?;
        }
        let n = folder.identities().len();
        let (train, val) = folder.split(
            SplitSize::Fraction(f64::from(cfg.val_fraction)),
            derive(cfg.seed, Stream::Split, 0),
        )?;
        let train = match singles {
            Some(singles) => ImageFolder::merge(&[train, singles])?,
            None => train,
        };
        let (n_train, n_val) = (train.identities().len(), val.identities().len());
        if n_train < cfg.batch.p {
            return Err(TrainError::Config(format!(
                "{}: {n} identities, {n_train} for training after holding out {n_val} for \
                 validation, but a batch needs p = {} identities: lower --p or --val-fraction",
                cfg.data.display(),
                cfg.batch.p
            )));
        }
        if n_val < MIN_VAL_IDENTITIES {
            return Err(TrainError::Config(format!(
                "{}: only {n_val} validation identities out of {n} (need {MIN_VAL_IDENTITIES}): \
                 raise --val-fraction or add identities",
                cfg.data.display()
            )));
        }
        let spec = &cfg.preprocessing;
        let sizing = Preprocessing {
            height: spec.height,
            width: spec.width,
            normalisation: Normalisation::None,
        };
        let train_images: Vec<Array2<f32>> = train
            .images()
            .par_iter()
            .map(|image| sizing.resize(image))
            .collect::<Result<_, _>>()?;
        let preprocessing = spec.fit_resized(&train_images)?;
        let val_inputs = preprocessing.batch(val.images())?.into_dyn();
        let lbp = cfg.lbp.as_ref().map(|l| {
            let spec = l.spec();
            let rows: Vec<Vec<f32>> = train
                .images()
                .par_iter()
                .map(|img| crate::model::lbp::describe(img, &spec))
                .collect();
            let descriptors = Array2::from_shape_vec((rows.len(), spec.raw_dim()), rows.concat())
                .expect("every descriptor has raw_dim values");
            (descriptors, val.images().to_vec())
        });
        Ok(RunData {
            preprocessing,
            train_images,
            train_labels: train.labels().to_vec(),
            train_identities: train.identities().to_vec(),
            val_inputs,
            val_labels: val.labels().to_vec(),
            val_identities: val.identities().to_vec(),
            lbp,
        })
    }

    /// The network's input (H', W') after preprocessing.
    pub fn input_shape(&self) -> [usize; 2] {
        let (h, w) = self.preprocessing.output_shape();
        [h, w]
    }
}
