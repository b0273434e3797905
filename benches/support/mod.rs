//! What the small benchmarks share: the time per figure, the load average, the timing
//! loop.

use std::time::{Duration, Instant};

/// `FACEPRINT_BENCH_SECONDS` (default 5): how long each figure is measured.
pub fn budget() -> Duration {
    Duration::from_secs_f64(
        std::env::var("FACEPRINT_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5.0),
    )
}

/// `/proc/loadavg`, printed with the figures: those of a busy machine do not compare.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `run`'s times in milliseconds, sorted, repeated for `budget` and at least 5 times.
pub fn times_ms(budget: Duration, mut run: impl FnMut()) -> Vec<f64> {
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || times.len() < 5 {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times
}
