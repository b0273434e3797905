//! Per-layer inference profile, shared by the engine and import benchmarks.

use std::time::{Duration, Instant};

use faceprint::nn::Tensor;
use faceprint::nn::sequential::Sequential;

/// Time per step of inference as `Sequential::infer` runs it: a layer and the
/// element-wise layers it applies in its own pass (`conv2d+batch_norm+relu+…`); the
/// fastest of the repetitions.
pub fn profile_infer(net: &Sequential, x: &Tensor) -> Result<(), Box<dyn std::error::Error>> {
    use faceprint::nn::epilogue;
    let reps: u32 = if x.shape()[0] == 1 { 200 } else { 10 };
    let layers = net.layers();
    let mut steps: Vec<(String, Duration)> = Vec::new();
    for rep in 0..reps {
        let (mut y, mut i, mut step) = (x.clone(), 0, 0);
        while i < layers.len() {
            let chain = epilogue::chain(&layers[i + 1..]);
            let t = Instant::now();
            let (out, used) = layers[i].infer_then(&y, &chain)?;
            let spent = t.elapsed();
            if rep == 0 {
                let kinds: Vec<&str> = layers[i..=i + used].iter().map(|l| l.kind()).collect();
                steps.push((format!("{i:>2} {}", kinds.join("+")), Duration::ZERO));
            }
            steps[step].1 = fastest(rep, steps[step].1, spent);
            (y, i, step) = (out, i + 1 + used, step + 1);
        }
    }
    let total: Duration = steps.iter().map(|s| s.1).sum();
    let batch = x.shape()[0];
    println!("profile (ms per inference of batch {batch}):");
    for (name, spent) in &steps {
        let share = 100.0 * spent.as_secs_f64() / total.as_secs_f64();
        let ms = spent.as_secs_f64() * 1e3;
        println!("  {name:<44} {ms:>7.3}  ({share:.1} %)");
    }
    Ok(())
}

/// The shorter of `best` and `spent`; `spent` alone at the first repetition.
pub fn fastest(rep: u32, best: Duration, spent: Duration) -> Duration {
    if rep == 0 { spent } else { best.min(spent) }
}
