//! Times single inference passes of the engine benchmark's ResNet-14 (one 112×96 image,
//! `Sequential::infer`) and prints their spread: fastest, percentiles, mean, slowest, and
//! the mean of each block of 50 passes. `RAYON_NUM_THREADS=1` for one thread.
//!
//! ```sh
//! cargo build --release --example pass-times
//! target/release/examples/pass-times [PASSES]      # default 600, after 20 to warm up
//! ```

use faceprint::model::arch::{ArchSpec, ResnetSpec};
use faceprint::nn::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let passes: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 600,
    };
    if passes == 0 {
        return Err("PASSES must be at least 1".into());
    }
    let net = ArchSpec::Resnet(ResnetSpec::with_input([112, 96])).build(0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = Tensor::from_shape_simple_fn(vec![1, 1, 112, 96], || rng.random_range(-1.0f32..1.0));
    for _ in 0..20 {
        net.infer(&x)?;
    }
    let mut ms = Vec::with_capacity(passes);
    for _ in 0..passes {
        let start = Instant::now();
        net.infer(&x)?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let blocks: Vec<String> = ms
        .chunks(50)
        .map(|b| format!("{:.2}", b.iter().sum::<f64>() / b.len() as f64))
        .collect();
    let mean = ms.iter().sum::<f64>() / passes as f64;
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((passes - 1) as f64 * q) as usize];
    println!("means of 50 passes (ms): {}", blocks.join(" "));
    println!(
        "{passes} passes (ms): fastest {:.3}, p10 {:.3}, median {:.3}, p90 {:.3}, p99 {:.3}, \
         slowest {:.3}, mean {mean:.3}",
        at(0.0),
        at(0.1),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
