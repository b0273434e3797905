//! Speed of the reference CNN: one training step (forward, backward, Adam) at batch 64,
//! inference at batch 64 and at batch 1, in images per second.
//!
//! Run: `cargo bench --bench engine`. `scripts/bench_torch.py` measures the same with
//! PyTorch. The loss is `E = Σ R ⊙ y` for a fixed random R (dE/dy = R), the same in both,
//! so the step times the network and the optimiser, not a particular loss.
//! `FACEPRINT_BENCH_SECONDS` sets the time per figure (default 5); `FACEPRINT_BENCH_PROFILE=1`
//! also prints the time spent in each layer and compares the GEMM kernels.

use faceprint::model::arch::ArchSpec;
use faceprint::nn::optim::{Adam, AdamConfig, Optimizer};
use faceprint::nn::sequential::Sequential;
use faceprint::nn::{Mode, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

type BenchResult = Result<(), Box<dyn std::error::Error>>;

fn random(shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0))
}

/// Runs `step` for at least `budget` after two warm-up calls; returns images per second.
fn rate(
    images: usize,
    budget: Duration,
    mut step: impl FnMut() -> BenchResult,
) -> Result<f64, Box<dyn std::error::Error>> {
    step()?;
    step()?;
    let start = Instant::now();
    let mut steps = 0usize;
    while start.elapsed() < budget || steps < 3 {
        step()?;
        steps += 1;
    }
    Ok((steps * images) as f64 / start.elapsed().as_secs_f64())
}

/// GFLOP/s of the `gemm` crate against ndarray's `dot` (matrixmultiply) and the naive
/// kernel, single-threaded, at the per-image product shapes of the reference CNN.
fn compare_kernels(rng: &mut ChaCha8Rng) {
    use faceprint::nn::gemm::Gemm;
    use ndarray::Array2;
    println!("kernels (GFLOP/s, one thread; m×n×k):");
    let shapes = [
        (64, 672, 288),
        (128, 168, 576),
        (288, 672, 64),
        (64, 288, 672),
        (64, 256, 5376),
    ];
    for (m, n, k) in shapes {
        let a = Array2::from_shape_simple_fn((m, k), || rng.random_range(-1.0f32..1.0));
        let b = Array2::from_shape_simple_fn((k, n), || rng.random_range(-1.0f32..1.0));
        let mut c = Array2::<f32>::zeros((m, n));
        let flops = 2.0 * (m * n * k) as f64;
        let time = |f: &mut dyn FnMut()| {
            f();
            let start = Instant::now();
            let mut reps = 0u32;
            while start.elapsed() < Duration::from_millis(500) {
                f();
                reps += 1;
            }
            flops * f64::from(reps) / start.elapsed().as_secs_f64() / 1e9
        };
        let (a_s, b_s) = (a.as_slice().unwrap_or(&[]), b.as_slice().unwrap_or(&[]));
        let g = Gemm::new(m, n, k);
        let fast = time(&mut || g.run(a_s, b_s, c.as_slice_mut().unwrap_or(&mut [])));
        let dot = time(&mut || c = a.dot(&b));
        let naive = time(&mut || g.run_naive(a_s, b_s, c.as_slice_mut().unwrap_or(&mut [])));
        println!("  {m}×{n}×{k}: gemm {fast:.1}, matrixmultiply {dot:.1}, naive {naive:.2}");
    }
}

/// Mean time per layer (forward and backward) over a few training steps.
fn profile(net: &mut Sequential, x: &Tensor, dy: &Tensor) -> BenchResult {
    const STEPS: u32 = 10;
    let n = net.len();
    let (mut fwd, mut bwd) = (vec![Duration::ZERO; n], vec![Duration::ZERO; n]);
    for _ in 0..STEPS {
        let mut y = x.clone();
        for (i, layer) in net.layers_mut().iter_mut().enumerate() {
            let t = Instant::now();
            y = layer.forward(&y, Mode::Train)?;
            fwd[i] += t.elapsed();
        }
        let mut d = dy.clone();
        for (i, layer) in net.layers_mut().iter_mut().enumerate().rev() {
            let t = Instant::now();
            d = layer.backward(&d)?;
            bwd[i] += t.elapsed();
        }
    }
    let total: Duration = fwd.iter().chain(&bwd).sum();
    println!("profile (ms per step of batch 64, forward + backward):");
    for (i, layer) in net.layers().iter().enumerate() {
        let (f, b) = (fwd[i] / STEPS, bwd[i] / STEPS);
        let share = 100.0 * (fwd[i] + bwd[i]).as_secs_f64() / total.as_secs_f64();
        println!(
            "  {i:>2} {:<12} {:>7.2} + {:>7.2}  ({share:.1} %)",
            layer.kind(),
            f.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn main() -> BenchResult {
    let seconds: f64 = std::env::var("FACEPRINT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let budget = Duration::from_secs_f64(seconds);
    let spec = ArchSpec::reference_cnn();
    let mut net = spec.build(0)?;
    let [h, w] = spec.input();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x64 = random(&[64, 1, h, w], &mut rng);
    let x1 = random(&[1, 1, h, w], &mut rng);
    let dy = random(&[64, spec.embedding_dim()], &mut rng);
    let mut adam = Adam::new(&AdamConfig::default())?;

    let train = rate(64, budget, || {
        net.zero_grad();
        net.forward(&x64, Mode::Train)?;
        net.backward(&dy)?;
        adam.step(&mut net.params_mut(), 1e-3)?;
        Ok(())
    })?;
    println!("train_step_b64: {train:.1} images/s");
    let infer64 = rate(64, budget, || {
        net.infer(&x64)?;
        Ok(())
    })?;
    println!("infer_b64: {infer64:.1} images/s");
    let infer1 = rate(1, budget, || {
        net.infer(&x1)?;
        Ok(())
    })?;
    println!("infer_b1: {infer1:.1} images/s");

    if std::env::var("FACEPRINT_BENCH_PROFILE").is_ok_and(|v| v == "1") {
        profile(&mut net, &x64, &dy)?;
        compare_kernels(&mut rng);
    }
    Ok(())
}
