//! Shared helpers of the train-embed / eval-embed tests .

use std::path::{Path, PathBuf};

use faceprint::data::ImageFolder;
use faceprint::embedding::Embedding;
use faceprint::model::Embedder;
use faceprint::model::arch::ArchSpec;
use faceprint::train::cli::{ArchArg, LossArg, TrainArgs};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train")
}

/// A run that takes a second or two on 2 cores: 12 identities of 23×28 images resized
/// to 28×24, a small MLP, P×K = 4×3.
pub fn tiny_args(dir: &Path, loss: LossArg) -> TrainArgs {
    TrainArgs {
        data: Some(fixtures().join("faces")),
        output: Some(dir.join("model.safetensors")),
        run_dir: Some(dir.join("run")),
        epochs: Some(6),
        seed: Some(7),
        threads: Some(2),
        val_fraction: Some(0.25),
        p: Some(4),
        k: Some(3),
        height: Some(28),
        width: Some(24),
        arch: Some(ArchArg::Mlp),
        hidden: Some(vec![64]),
        embedding_dim: Some(16),
        dropout: Some(0.1),
        loss: Some(loss),
        lr: Some(3e-3),
        ..TrainArgs::default()
    }
}

/// Leave-one-out separation of a folder's identities by cosine similarity of
/// embeddings: (mean genuine − mean impostor similarity, nearest-neighbour accuracy).
pub fn separation(embeddings: &[Embedding], labels: &[usize]) -> (f64, f64) {
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum::<f64>();
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    let mut correct = 0;
    for i in 0..embeddings.len() {
        let mut best = (f64::NEG_INFINITY, usize::MAX);
        for j in 0..embeddings.len() {
            if i == j {
                continue;
            }
            let s = cos(&embeddings[i], &embeddings[j]);
            if j > i {
                if labels[i] == labels[j] {
                    genuine.push(s);
                } else {
                    impostor.push(s);
                }
            }
            if s > best.0 {
                best = (s, labels[j]);
            }
        }
        correct += usize::from(best.1 == labels[i]);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    (
        mean(&genuine) - mean(&impostor),
        correct as f64 / embeddings.len() as f64,
    )
}

/// The embeddings of every image of `folder` by `embedder`, with their labels.
pub fn embed_folder(embedder: &Embedder, folder: &Path) -> (Vec<Embedding>, Vec<usize>) {
    let images = ImageFolder::scan(folder).expect("fixture folder scans");
    let embeddings = embedder
        .embed(images.images())
        .expect("fixture images embed");
    (embeddings, images.labels().to_vec())
}

/// The same model file's network with fresh random weights (seed `seed`), as an
/// untrained reference with the same architecture and preprocessing.
pub fn untrained(model: &Path, seed: u64) -> Embedder {
    let mut file = faceprint::model::ModelFile::load(model).expect("model loads");
    let arch: &ArchSpec = &file.meta.architecture;
    file.net = arch.build(seed).expect("architecture builds");
    Embedder::new(file)
}

/// The network's tensors by name, as raw bits (for exact comparisons).
pub fn weight_bits(model: &Path) -> Vec<(String, Vec<u32>)> {
    let file = faceprint::model::ModelFile::load(model).expect("model loads");
    let mut named: Vec<(String, Vec<u32>)> = file
        .net
        .named_tensors()
        .into_iter()
        .map(|(name, t)| (name, t.iter().map(|v| v.to_bits()).collect()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}
