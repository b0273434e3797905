//! Seeded synthetic galleries shared by the index tests and `benches/index.rs`.
//!
//! A gallery models enrolled faces: each identity has a random unit "centre" and each of
//! its faces is `normalise(centre + e)` with `e ~ N(0, σ²/D · I)`, so `‖e‖ ≈ σ`. Two
//! faces of one identity then have cosine ≈ 1/(1 + σ²) (σ = 0.6: ≈ 0.74), faces of
//! different identities ≈ 0 — the shape of real face-embedding scores.

use faceprint::embedding::Embedding;
use faceprint::index::{FaceId, IdentityId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

pub type Item = (FaceId, IdentityId, Embedding);

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `v / ‖v‖` (in f32, as the galleries were always drawn) as an [`Embedding`].
pub fn normalise(mut v: Vec<f32>) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    Embedding::new(v).expect("a normalised random vector is an embedding")
}

/// A uniformly random unit vector of dimension `d`.
pub fn random_unit(rng: &mut ChaCha8Rng, d: usize) -> Embedding {
    normalise((0..d).map(|_| rng.sample(StandardNormal)).collect())
}

/// `normalise(v + e)`, `e ~ N(0, σ²/D · I)`.
pub fn perturb(rng: &mut ChaCha8Rng, v: &[f32], sigma: f32) -> Embedding {
    let s = sigma / (v.len() as f32).sqrt();
    normalise(
        v.iter()
            .map(|&x| x + s * rng.sample::<f32, _>(StandardNormal))
            .collect(),
    )
}

/// Identity centres and a gallery of `n` faces over `n / faces_per_identity` identities;
/// face ids are `0..n`, identity ids `1000 + i`.
pub struct Gallery {
    pub centres: Vec<Embedding>,
    pub items: Vec<Item>,
}

pub fn gallery(seed: u64, n: usize, d: usize, faces_per_identity: usize, sigma: f32) -> Gallery {
    let mut r = rng(seed);
    let identities = n.div_ceil(faces_per_identity);
    let centres: Vec<Embedding> = (0..identities).map(|_| random_unit(&mut r, d)).collect();
    let items = (0..n)
        .map(|f| {
            let i = f / faces_per_identity;
            (
                f as FaceId,
                1000 + i as IdentityId,
                perturb(&mut r, &centres[i], sigma),
            )
        })
        .collect();
    Gallery { centres, items }
}

/// Probe faces: fresh faces of random enrolled identities (`normalise(centre + e)`).
pub fn probes(seed: u64, g: &Gallery, count: usize, sigma: f32) -> Vec<Embedding> {
    let mut r = rng(seed);
    (0..count)
        .map(|_| {
            let i = r.random_range(0..g.centres.len());
            perturb(&mut r, &g.centres[i], sigma)
        })
        .collect()
}

use faceprint::index::{ExactIndex, FaceIndex, GalleryIndex, HnswIndex, IndexConfig};

/// A config for small test galleries: with `ef_search` above the gallery size an HNSW
/// walk visits every point the graph links to from its entry point (every point, unless
/// pruning left one without incoming links), so results equal exact search's; rebuilds
/// start early.
pub fn small_config() -> IndexConfig {
    IndexConfig {
        ef_search: 256,
        crossover: 40,
        rebuild_min_deleted: 4,
        ..IndexConfig::default()
    }
}

/// An implementation under test and its name.
pub type Named = (&'static str, Box<dyn FaceIndex>);

/// Each implementation under test, by name: exact, HNSW, and a gallery index that
/// switches from exact to HNSW at 40 faces (so most tests cross it).
pub fn implementations(d: usize) -> Vec<Named> {
    vec![
        ("exact", Box::new(ExactIndex::new(d).unwrap())),
        ("hnsw", Box::new(HnswIndex::new(d, small_config()).unwrap())),
        (
            "gallery",
            Box::new(GalleryIndex::new(d, small_config()).unwrap()),
        ),
    ]
}
