//! Speed of the engine: one training step (forward, backward, Adam) and inference at
//! the training batch and at batch 1, in images per second, for the reference CNN
//! (1×56×48, batch 64) and a residual network (ResNet-14 of 3 stages at 1×112×96).
//!
//! Run: `cargo bench --bench engine`. `scripts/bench_torch.py` measures the same with
//! PyTorch; `scripts/bench_engine_vs_torch.sh` alternates the two. The loss is
//! `E = Σ R ⊙ y` for a fixed random R (dE/dy = R), the same in both, so the step times
//! the network and the optimiser, not a particular loss. The load average
//! (`/proc/loadavg`) is printed before and after, because figures taken on a busy
//! machine are not comparable with idle ones. After the training figure it prints the
//! peak resident memory since the network was built (Linux's `VmHWM`).
//!
//! Environment: `FACEPRINT_BENCH_SECONDS` sets the time per figure (default 5);
//! `FACEPRINT_BENCH_NET` = `cnn` (default), `resnet` or `both`;
//! `FACEPRINT_BENCH_FIGURES` = a comma-separated subset of `train`, `infer_b` (inference
//! at the training batch) and `infer_1` (default all three), for short A/B alternations;
//! `FACEPRINT_BENCH_PROFILE=1` also prints the time spent in each layer (training step,
//! inference at both batches) and compares the GEMM kernels.

use faceprint::model::arch::{ArchSpec, ResnetSpec};
use faceprint::nn::optim::{Adam, AdamConfig, Optimizer};
use faceprint::nn::sequential::Sequential;
use faceprint::nn::{Mode, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

#[path = "support/profile.rs"]
mod profile;

use profile::{fastest, profile_infer};

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

/// GFLOP/s of the `gemm` crate against the engine's unpacked product (Winograd's),
/// ndarray's `dot` (matrixmultiply) and the naive kernel, single-threaded, at the
/// per-image product shapes of the reference CNN and the ResNet-14.
fn compare_kernels(rng: &mut ChaCha8Rng) {
    use faceprint::nn::gemm::{Gemm, unpacked};
    use ndarray::Array2;
    println!("kernels (GFLOP/s, one thread; m×n×k):");
    let shapes = [
        (64, 672, 288),
        (128, 168, 576),
        (288, 672, 64),
        (64, 288, 672),
        (64, 256, 5376),
        // ResNet-14's first stage: one band of four output rows, the same product
        // transposed, and the unbanded product of one image.
        (32, 384, 288),
        (384, 32, 288),
        (32, 10752, 288),
        // One of the 36 products of Winograd's F(4×4, 3×3) for one image at each of the
        // ResNet-14's stages (112×96, 56×48, 28×24: output channels × tiles × input
        // channels), batch 1's products.
        (32, 672, 32),
        (64, 168, 64),
        (128, 42, 128),
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
        let in_place = time(&mut || {
            unpacked::product(m, n, k, a_s, b_s, c.as_slice_mut().unwrap_or(&mut []));
        });
        println!(
            "  {m}×{n}×{k}: gemm {fast:.1}, unpacked {in_place:.1}, matrixmultiply {dot:.1}, \
             naive {naive:.2}"
        );
    }
}

/// Time per step (forward and backward) of a training step, each step a layer and the
/// element-wise layers it applies in its own pass, as `Sequential` runs them. The fastest
/// of 10 repetitions, the figure least disturbed by other work on a shared machine.
fn profile_train(net: &mut Sequential, x: &Tensor, dy: &Tensor) -> BenchResult {
    use faceprint::nn::epilogue;
    const STEPS: u32 = 10;
    let mut steps: Vec<(usize, String, Duration, Duration)> = Vec::new();
    for rep in 0..STEPS {
        let layers = net.layers_mut();
        let (mut y, mut i, mut step) = (x.clone(), 0, 0);
        while i < layers.len() {
            let chain = epilogue::chain(&layers[i + 1..]);
            let t = Instant::now();
            let (out, used) = layers[i].forward_then(&y, Mode::Train, &chain)?;
            let spent = t.elapsed();
            if rep == 0 {
                let kinds: Vec<&str> = layers[i..=i + used].iter().map(|l| l.kind()).collect();
                steps.push((i, kinds.join("+"), Duration::ZERO, Duration::ZERO));
            }
            steps[step].2 = fastest(rep, steps[step].2, spent);
            (y, i, step) = (out, i + 1 + used, step + 1);
        }
        let mut d = dy.clone();
        for (i, _, _, bwd) in steps.iter_mut().rev() {
            let t = Instant::now();
            d = layers[*i].backward(&d)?;
            *bwd = fastest(rep, *bwd, t.elapsed());
        }
    }
    let total: Duration = steps.iter().map(|s| s.2 + s.3).sum();
    let batch = x.shape()[0];
    println!("profile (ms per training step of batch {batch}, forward + backward):");
    for (i, name, fwd, bwd) in &steps {
        let share = 100.0 * (*fwd + *bwd).as_secs_f64() / total.as_secs_f64();
        let (f, b) = (fwd.as_secs_f64(), bwd.as_secs_f64());
        println!(
            "  {i:>2} {name:<24} {:>7.2} + {:>7.2}  ({share:.1} %)",
            f * 1e3,
            b * 1e3
        );
    }
    Ok(())
}

/// The 1-, 5- and 15-minute load averages, as the kernel reports them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `(steal, total)` CPU time in jiffies since boot, from the first line of /proc/stat:
/// steal is time this virtual machine's cores were ready to run but the hypervisor ran
/// another guest, which slows a benchmark as much as a local process would.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some((*fields.get(7)?, fields.iter().sum()))
}

/// The share of CPU time stolen by the hypervisor since `start` (from `cpu_times`).
fn steal_since(start: Option<(u64, u64)>) -> String {
    match (start, cpu_times()) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
            format!("{:.0}%", 100.0 * (s1 - s0) as f64 / (t1 - t0) as f64)
        }
        _ => "unknown".into(),
    }
}

/// Resets the process's peak resident memory to its current one (Linux: writing 5 to
/// /proc/self/clear_refs); false where that is not possible.
fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident memory in MB since the last `reset_peak_memory`
/// (`VmHWM` in /proc/self/status).
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One network's figures: training step at `batch`, inference at `batch` and at 1.
fn bench_net(name: &str, spec: &ArchSpec, batch: usize, budget: Duration) -> BenchResult {
    // The previous network's inference buffers, kept for reuse, are not this one's.
    faceprint::nn::recycle::clear();
    let peak_reset = reset_peak_memory();
    let mut net = spec.build(0)?;
    let [h, w] = spec.input();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let xb = random(&[batch, 1, h, w], &mut rng);
    let x1 = random(&[1, 1, h, w], &mut rng);
    let dy = random(&[batch, spec.embedding_dim()], &mut rng);
    let mut adam = Adam::new(&AdamConfig::default())?;

    println!("{name}: load average {}", load_average());
    let cpu_start = cpu_times();
    let wanted = |figure: &str| {
        std::env::var("FACEPRINT_BENCH_FIGURES")
            .map_or(true, |list| list.split(',').any(|f| f.trim() == figure))
    };
    if wanted("train") {
        train_figure(name, (&mut net, &mut adam), (&xb, &dy), budget, peak_reset)?;
    }
    if wanted("infer_b") {
        let infer_b = rate(batch, budget, || {
            net.infer(&xb)?;
            Ok(())
        })?;
        println!("{name} infer_b{batch}: {infer_b:.1} images/s");
    }
    if wanted("infer_1") {
        let infer1 = rate(1, budget, || {
            net.infer(&x1)?;
            Ok(())
        })?;
        println!("{name} infer_b1: {infer1:.1} images/s");
    }
    println!(
        "{name}: load average {}, CPU time stolen by the hypervisor during the figures {}",
        load_average(),
        steal_since(cpu_start)
    );

    if std::env::var("FACEPRINT_BENCH_PROFILE").is_ok_and(|v| v == "1") {
        profile_train(&mut net, &xb, &dy)?;
        profile_infer(&net, &xb)?;
        profile_infer(&net, &x1)?;
    }
    Ok(())
}

/// The training step's images/s and the peak memory since the network was built.
fn train_figure(
    name: &str,
    (net, adam): (&mut Sequential, &mut Adam),
    (xb, dy): (&Tensor, &Tensor),
    budget: Duration,
    peak_reset: bool,
) -> BenchResult {
    let batch = xb.shape()[0];
    let train = rate(batch, budget, || {
        net.zero_grad();
        net.forward(xb, Mode::Train)?;
        net.backward(dy)?;
        adam.step(&mut net.params_mut(), 1e-3)?;
        Ok(())
    })?;
    println!("{name} train_step_b{batch}: {train:.1} images/s");
    // The peak since the network was built: its parameters, the inputs, the optimiser's
    // state and whatever a training step holds at its fullest. Memory an earlier network
    // of the same run freed may still be resident (the allocator keeps it), so compare
    // runs of one network each (`FACEPRINT_BENCH_NET=cnn` or `resnet`).
    match peak_memory_mb().filter(|_| peak_reset) {
        Some(mb) => println!("{name} train_step_b{batch}: peak resident memory {mb:.1} MB"),
        None => println!("{name} train_step_b{batch}: peak resident memory unknown"),
    }
    Ok(())
}

fn main() -> BenchResult {
    let seconds: f64 = std::env::var("FACEPRINT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let budget = Duration::from_secs_f64(seconds);
    let which = std::env::var("FACEPRINT_BENCH_NET").unwrap_or_else(|_| "cnn".into());
    println!("threads {}", rayon::current_num_threads());
    if which == "cnn" || which == "both" {
        bench_net("cnn", &ArchSpec::reference_cnn(), 64, budget)?;
    }
    if which == "resnet" || which == "both" {
        // A ResNet-14 (stem 32, stages 32-64-128 of two BasicBlocks) on 112×96 crops:
        // ~2.2 GFLOP per image, 40× the reference CNN, so a smaller batch.
        let spec = ArchSpec::Resnet(ResnetSpec::with_input([112, 96]));
        bench_net("resnet", &spec, 16, budget)?;
    }
    if std::env::var("FACEPRINT_BENCH_PROFILE").is_ok_and(|v| v == "1") {
        compare_kernels(&mut ChaCha8Rng::seed_from_u64(2));
    }
    Ok(())
}
