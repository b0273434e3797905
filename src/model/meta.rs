//! What a model file says about itself, besides its weights.

use serde::{Deserialize, Serialize};

use super::arch::ArchSpec;
use super::tail::TailModel;
use crate::data::Preprocessing;

/// Version of the metadata layout; bumped when files gain what older readers would
/// miss. 2: the impostor tail ([`TailModel`]) and the descriptor branch
/// ([`super::lbp`]). A file is written with the lowest version that describes it
/// ([`ModelMeta::needed_format`]), so a file with neither stays readable by older builds.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest layout still read (1: no tail; the server falls back to `thresholds`).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// The metadata key under which the JSON below is stored in the safetensors header.
pub const METADATA_KEY: &str = "faceprint";

/// Cosine-similarity thresholds calibrated on held-out identities: a pair of faces at or
/// above `far_1pct` is accepted by at most 1% of impostor comparisons, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub far_0_1pct: f32,
    pub far_1pct: f32,
    pub far_10pct: f32,
}

/// Everything a model file records besides its tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The network, enough to rebuild it before loading its tensors.
    pub architecture: ArchSpec,
    /// The preprocessing the network was trained with; inference repeats it exactly.
    pub preprocessing: Preprocessing,
    /// Length of the (unit-norm) embedding.
    pub embedding_dim: usize,
    /// The loss the network was trained with, as configured (free-form JSON).
    pub loss: serde_json::Value,
    /// Training summary: data, epochs, time, validation metrics (free-form JSON).
    pub training: serde_json::Value,
    /// Calibrated decision thresholds for one comparison (the fallback when `tail` is
    /// absent).
    pub thresholds: Thresholds,
    /// The impostor tail per enrolled identity, from which the server derives the
    /// threshold for a gallery's size and a target FAR; absent in format-1 files and in
    /// models not yet calibrated with `eval-embed --calibrate-into`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<TailModel>,
    /// Embed each face and its mirror image and use the normalised sum (a "flip test").
    /// Absent in older files: off.
    #[serde(default)]
    pub flip_average: bool,
    /// How faces in photographs were found and aligned for training (`train-embed
    /// --detect`), so the server finds them the same way; `None` (older files, or a
    /// model trained on face crops as they came): the server's own `[detector]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<crate::detect::DetectConfig>,
    /// The frame faces found in photographs are aligned to before preprocessing: the
    /// 96×112 ArcFace frame that `train-embed --detect` trains on (the default, and
    /// what files without this field mean), or dlib's 150×150 chip for the converted
    /// dlib network.
    #[serde(default, skip_serializing_if = "is_default_frame")]
    pub frame: crate::detect::Frame,
    /// The hand-crafted descriptor branch fused with the network's embedding
    /// ([`super::lbp`]); its tensors are `lbp.mean` and `lbp.proj`. Format 2; `None` in
    /// format 1 files. With it, embeddings are `embedding_dim + lbp.dim` long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lbp: Option<super::lbp::LbpSpec>,
    /// Model version: the first 16 hex digits of the SHA-256 of the weights (names,
    /// shapes and bytes in name order), computed when the file is written and checked
    /// when it is read.
    pub version: String,
}

fn is_default_frame(frame: &crate::detect::Frame) -> bool {
    *frame == crate::detect::Frame::default()
}

impl ModelMeta {
    /// Whether the network learned faces aligned on their landmarks (trained with
    /// `train-embed --detect`, or converted with its own frame, as dlib's network): then
    /// a face crop sent as it is (`detect=false`) is aligned the same way before it is
    /// embedded. A model trained on crops as they came sees them as they come.
    pub fn learned_aligned_faces(&self) -> bool {
        self.detector.is_some() || !is_default_frame(&self.frame)
    }

    /// The format version this metadata needs: 2 with a tail or a descriptor branch,
    /// else 1.
    pub fn needed_format(&self) -> u32 {
        if self.lbp.is_some() || self.tail.is_some() {
            2
        } else {
            1
        }
    }

    /// Length of the embeddings the model produces: the network's, plus the descriptor
    /// branch's when there is one.
    pub fn output_dim(&self) -> usize {
        self.embedding_dim + self.lbp.as_ref().map_or(0, |l| l.dim)
    }
}
