//! Index benchmark: exact scan vs HNSW (hnsw_rs) on seeded 128-d face-like galleries.
//!
//! ```sh
//! cargo bench --bench index                      # 1k and 10k, plus extras (minutes)
//! cargo bench --bench index -- --sizes 1000,10000,100000 --skip-extras  # + 100k: the
//! #   100k HNSW build is the long part (36 min under a load of 13 on 2 cores)
//! cargo bench --bench index -- --crossover 20000,50000   # exact vs HNSW at more sizes
//! cargo bench --bench index -- --data /tmp/faceprint-index   # also write the vectors
//! cargo bench --bench index -- --sizes '' --skip-extras --batched 100000,1000000
//! #   exact scan under 16 concurrent clients, batched vs unbatched
//! cargo bench --bench index -- --sizes '' --skip-extras --scan 100000,1000000
//! #   the int8 scan (default) vs the f32 scan: one client and 16 clients
//! cargo bench --bench index -- --sizes '' --skip-extras --pass 1000000
//! #   one pass of the exact index over the gallery alone (no batcher, no clients) for
//! #   1, 2, 4, 8, 16 and 64 queries (`--pass-queries`), on one thread and split over
//! #   rayon's: median ms of `--pass-rounds` (15) passes
//! cargo bench --bench index -- --sizes 100000 --skip-extras --m 24 --ef-construction 100
//! #   HNSW with other graph parameters (defaults: IndexConfig's)
//! cargo bench --bench index -- --sizes 100000 --skip-extras --graph-dir /tmp/graphs
//! #   also save each HNSW graph, load it back, and check the loaded graph's answers
//! cargo bench --bench index -- --sizes 100000 --skip-extras --shuffle
//! #   HNSW built from the faces in a random order instead of identity by identity
//! ```
//!
//! Data (tests/support/index.rs): identities × 4 faces, each face `normalise(centre + e)`,
//! `‖e‖ ≈ 0.6`; queries are fresh faces of random enrolled identities. For each size it
//! prints exact and HNSW build time, single-thread queries/s, recall@10 against exact
//! search (identity-level, what the server uses, and face-level, comparable with
//! hnswlib), and resident memory per face. `--data DIR` writes `base_N.f32`,
//! `queries_N.f32` (row-major little-endian f32) and `truth_N.u32` (exact face-level
//! top-10 per query) for `scripts/bench_hnswlib.py`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anndists::dist::DistL2;
use faceprint::embedding::Embedding;
use faceprint::index::{
    ExactIndex, FaceIndex, HnswIndex, IdentityHit, IndexConfig, ScanPrecision, UnitCosine, dot_many,
};
use hnsw_rs::hnsw::Hnsw;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use support::index::{Gallery, gallery, probes};

const D: usize = 128;
const K: usize = 10;

struct Args {
    sizes: Vec<usize>,
    queries: usize,
    efs: Vec<usize>,
    crossover_sizes: Vec<usize>,
    data: Option<PathBuf>,
    extras: bool,
    batched_sizes: Vec<usize>,
    scan_sizes: Vec<usize>,
    pass_sizes: Vec<usize>,
    pass_queries: Vec<usize>,
    pass_rounds: usize,
    /// The HNSW index's configuration (`--m`, `--ef-construction`).
    hnsw: IndexConfig,
    graph_dir: Option<PathBuf>,
    /// Insert the faces into the graph in a random order (`--shuffle`) instead of
    /// identity by identity, each identity's faces together (the order of a database).
    shuffle: bool,
}

fn list(s: &str) -> Vec<usize> {
    s.split(',').filter_map(|x| x.trim().parse().ok()).collect()
}

fn parse_args() -> Args {
    let mut a = Args {
        sizes: vec![1_000, 10_000],
        queries: 1_000,
        efs: vec![32, 64, 128, 256],
        crossover_sizes: Vec::new(),
        data: None,
        extras: true,
        batched_sizes: Vec::new(),
        scan_sizes: Vec::new(),
        pass_sizes: Vec::new(),
        pass_queries: vec![1, 2, 4, 8, 16, 64],
        pass_rounds: 15,
        hnsw: IndexConfig::default(),
        graph_dir: None,
        shuffle: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--sizes" => a.sizes = list(&value()),
            "--queries" => a.queries = value().parse().unwrap_or(a.queries),
            "--efs" => a.efs = list(&value()),
            "--crossover" => a.crossover_sizes = list(&value()),
            "--skip-crossover" => a.crossover_sizes.clear(),
            "--data" => a.data = Some(PathBuf::from(value())),
            "--skip-extras" => a.extras = false,
            "--batched" => a.batched_sizes = list(&value()),
            "--scan" => a.scan_sizes = list(&value()),
            "--pass" => a.pass_sizes = list(&value()),
            "--pass-queries" => a.pass_queries = list(&value()),
            "--pass-rounds" => a.pass_rounds = value().parse().unwrap_or(a.pass_rounds).max(1),
            "--m" => a.hnsw.m = value().parse().unwrap_or(a.hnsw.m),
            "--ef-construction" => {
                a.hnsw.ef_construction = value().parse().unwrap_or(a.hnsw.ef_construction)
            }
            "--graph-dir" => a.graph_dir = Some(PathBuf::from(value())),
            "--shuffle" => a.shuffle = true,
            _ => {} // cargo passes `--bench`
        }
    }
    a
}

/// Resident set size of this process, from /proc (0 where unavailable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Passes over the queries; the fastest counts. The machine is shared with other jobs,
/// and the best of a few passes is the least disturbed by them.
const PASSES: usize = 3;

/// Runs `search` over every query on this thread; returns results and queries/s.
fn run_queries<T>(queries: &[Embedding], mut search: impl FnMut(&Embedding) -> T) -> (Vec<T>, f64) {
    let mut best = f64::INFINITY;
    let mut out = Vec::new();
    for _ in 0..PASSES {
        let (o, t) = timed(|| queries.iter().map(&mut search).collect::<Vec<_>>());
        best = best.min(t.as_secs_f64());
        out = o;
    }
    (out, queries.len() as f64 / best)
}

/// Fraction of `truth`'s ids found in `got`, summed over queries.
fn recall<I: Eq + std::hash::Hash + Copy>(got: &[Vec<I>], truth: &[Vec<I>]) -> f64 {
    let (mut hit, mut all) = (0, 0);
    for (g, t) in got.iter().zip(truth) {
        let t: HashSet<I> = t.iter().copied().collect();
        hit += g.iter().filter(|x| t.contains(x)).count();
        all += t.len();
    }
    hit as f64 / all.max(1) as f64
}

fn ids(hits: &[IdentityHit]) -> Vec<i64> {
    hits.iter().map(|h| h.identity).collect()
}

/// Row-major `(N, D)` copy of the gallery's vectors (face id = row).
fn matrix(g: &Gallery) -> Vec<f32> {
    g.items
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .collect()
}

/// Exact face-level top-K rows per query (the ground truth written for hnswlib).
fn face_truth(base: &[f32], queries: &[Embedding]) -> Vec<Vec<u32>> {
    let n = base.len() / D;
    queries
        .par_iter()
        .map(|q| {
            let mut s = vec![0.0f32; n];
            dot_many(base, q, &mut s);
            let mut rows: Vec<u32> = (0..n as u32).collect();
            let k = K.min(n);
            rows.select_nth_unstable_by(k - 1, |&a, &b| s[b as usize].total_cmp(&s[a as usize]));
            rows.truncate(k);
            rows
        })
        .collect()
}

fn write_f32(path: &Path, rows: impl Iterator<Item = f32>) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for x in rows {
        w.write_all(&x.to_le_bytes())?;
    }
    w.flush()
}

fn write_data(dir: &Path, n: usize, base: &[f32], queries: &[Embedding], truth: &[Vec<u32>]) {
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_f32(&dir.join(format!("base_{n}.f32")), base.iter().copied())?;
        write_f32(
            &dir.join(format!("queries_{n}.f32")),
            queries.iter().flatten().copied(),
        )?;
        let bytes: Vec<u8> = truth
            .iter()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        std::fs::write(dir.join(format!("truth_{n}.u32")), bytes)
    })();
    if let Err(e) = result {
        eprintln!("cannot write benchmark data to {}: {e}", dir.display());
    }
}

/// One gallery size: exact and HNSW build, speed, recall, memory.
fn bench_size(n: usize, args: &Args) {
    let g = gallery(n as u64, n, D, 4, 0.6);
    let queries = probes(n as u64 + 1, &g, args.queries, 0.6);
    let base = matrix(&g);
    let truth = face_truth(&base, &queries);
    if let Some(dir) = &args.data {
        write_data(dir, n, &base, &queries, &truth);
    }

    let rss0 = rss_bytes();
    let exact = ExactIndex::new(D).unwrap();
    let ((), t_exact) = timed(|| exact.insert_batch(&g.items).unwrap());
    let rss_exact = rss_bytes().saturating_sub(rss0);
    let (exact_hits, exact_qps) = run_queries(&queries, |q| ids(&exact.search(q, K).unwrap()));
    println!(
        "| {n} | exact | — | {:.3} | {exact_qps:.0} | — | 1.000 | 1.000 | {} |",
        t_exact.as_secs_f64(),
        rss_exact / n as u64
    );

    // Before the memory reading: the shuffled copy is the benchmark's, not the graph's.
    let order: Cow<'_, [_]> = if args.shuffle {
        let mut items = g.items.clone();
        items.shuffle(&mut ChaCha8Rng::seed_from_u64(n as u64));
        Cow::Owned(items)
    } else {
        Cow::Borrowed(&g.items)
    };
    let rss1 = rss_bytes();
    let graph_dir = args
        .graph_dir
        .as_ref()
        .map(|d| d.join(format!("gallery-{n}")));
    let hnsw = HnswIndex::with_graph_dir(D, args.hnsw.clone(), graph_dir.clone()).unwrap();
    let ((), t_hnsw) = timed(|| hnsw.insert_batch(&order).unwrap());
    let rss_hnsw = rss_bytes().saturating_sub(rss1);
    let mut ours = String::new(); // ef, face recall, face q/s, build s — for bench_hnswlib.py
    for &ef in &args.efs {
        let (hits, qps) = run_queries(&queries, |q| ids(&hnsw.search_with_ef(q, K, ef).unwrap()));
        let (faces, face_qps) = run_queries(&queries, |q| {
            let f = hnsw.nearest_faces(q, K, ef).unwrap();
            f.iter().map(|&(face, _)| face as u32).collect::<Vec<_>>()
        });
        println!(
            "| {n} | hnsw | {ef} | {:.3} | {qps:.0} | {face_qps:.0} | {:.4} | {:.4} | {} |",
            t_hnsw.as_secs_f64(),
            recall(&hits, &exact_hits),
            recall(&faces, &truth),
            rss_hnsw / n as u64
        );
        let face_recall = recall(&faces, &truth);
        let build = t_hnsw.as_secs_f64();
        ours += &format!("{ef},{face_recall},{face_qps},{build}\n");
    }
    if let Some(dir) = &args.data
        && let Err(e) = std::fs::write(dir.join(format!("ours_{n}.csv")), ours)
    {
        eprintln!("cannot write ours_{n}.csv: {e}");
    }
    if let Some(dir) = graph_dir {
        save_and_load(&hnsw, &dir, args, &queries);
    }
}

/// Saves `hnsw` to `dir`, loads it back, and checks the loaded graph answers alike.
fn save_and_load(hnsw: &HnswIndex, dir: &Path, args: &Args, queries: &[Embedding]) {
    let (saved, t_save) = timed(|| hnsw.save());
    assert!(saved.expect("graph saved"), "a graph directory was given");
    let bytes: u64 = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let (loaded, t_load) = timed(|| HnswIndex::load(dir, D, args.hnsw.clone()).unwrap());
    let ef = args.efs.last().copied().unwrap_or(64);
    let same = queries
        .iter()
        .filter(|q| {
            hnsw.search_with_ef(q, K, ef).unwrap() == loaded.search_with_ef(q, K, ef).unwrap()
        })
        .count();
    println!(
        "graph of {} faces: saved in {:.2} s, {:.1} MB on disk; loaded (checksums included) in {:.2} s; \
         {same}/{} queries answered alike at ef {ef}",
        hnsw.len(),
        t_save.as_secs_f64(),
        bytes as f64 / 1e6,
        t_load.as_secs_f64(),
        queries.len()
    );
}

/// Exact vs HNSW queries/s (one thread, identity top-10) across sizes, at the default
/// `ef_search`: the crossover is where HNSW starts to answer faster.
fn bench_crossover(sizes: &[usize], queries: usize) {
    let ef = IndexConfig::default().ef_search;
    for &n in sizes {
        let g = gallery(n as u64, n, D, 4, 0.6);
        let qs = probes(n as u64 + 1, &g, queries, 0.6);
        let exact = ExactIndex::new(D).unwrap();
        exact.insert_batch(&g.items).unwrap();
        let (truth, exact_qps) = run_queries(&qs, |q| ids(&exact.search(q, K).unwrap()));
        let hnsw = HnswIndex::new(D, IndexConfig::default()).unwrap();
        hnsw.insert_batch(&g.items).unwrap();
        let (hits, hnsw_qps) = run_queries(&qs, |q| ids(&hnsw.search(q, K).unwrap()));
        println!(
            "| {n} | {exact_qps:.0} | {hnsw_qps:.0} (ef {ef}) | {:.4} | {:.2} |",
            recall(&hits, &truth),
            hnsw_qps / exact_qps
        );
    }
}

/// Concurrent clients of the exact index, as the server's request threads are.
const CLIENTS: usize = 16;

/// Exact index under [`CLIENTS`] threads querying at once: batched scans (the default
/// config) vs one query per scan (`batch_max_queries = 1`: each query scans alone, concurrently, as before batching);
/// answers must be equal.
fn bench_batched(sizes: &[usize], queries: usize) {
    for &n in sizes {
        let g = gallery(n as u64, n, D, 4, 0.6);
        let qs = probes(n as u64 + 1, &g, queries, 0.6);
        let rss0 = rss_bytes();
        let batched = ExactIndex::new(D).unwrap();
        let ((), load) = timed(|| batched.insert_batch(&g.items).unwrap());
        let per_face = rss_bytes().saturating_sub(rss0) / n as u64;
        let single = IndexConfig {
            batch_max_queries: 1,
            ..Default::default()
        };
        let unbatched = ExactIndex::with_config(D, &single).unwrap();
        unbatched.insert_batch(&g.items).unwrap();
        drop(g);
        let (a, qps_a, p99_a) = concurrent_queries(&batched, &qs);
        let (b, qps_b, p99_b) = concurrent_queries(&unbatched, &qs);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        println!(
            "| {n} | {:.2} | {per_face} | {qps_b:.0} | {p99_b:.1} | {qps_a:.0} | {p99_a:.1} | {same}/{} |",
            load.as_secs_f64(),
            qs.len()
        );
    }
}

/// The int8 scan (default) against the f32 scan on the same gallery: memory, one client
/// querying alone (the server idle but for one request), and [`CLIENTS`] at once
/// (batched, the default); answers must be equal.
fn bench_scan(sizes: &[usize], queries: usize) {
    for &n in sizes {
        let g = gallery(n as u64, n, D, 4, 0.6);
        let qs = probes(n as u64 + 1, &g, queries, 0.6);
        let mut rows = Vec::new();
        // Both indexes stay alive until both are measured, so the second one's RSS is
        // its own (not memory the first one freed).
        let mut kept = Vec::new();
        for scan in [ScanPrecision::F32, ScanPrecision::Int8] {
            let config = IndexConfig {
                scan,
                ..Default::default()
            };
            let rss0 = rss_bytes();
            let index = ExactIndex::with_config(D, &config).unwrap();
            let ((), load) = timed(|| index.insert_batch(&g.items).unwrap());
            let per_face = rss_bytes().saturating_sub(rss0) / n as u64;
            let one = &qs[..qs.len().min(200)];
            let (_, single) = timed(|| one.iter().for_each(|q| drop(index.search(q, K).unwrap())));
            let single_qps = one.len() as f64 / single.as_secs_f64();
            let (answers, qps, p99) = concurrent_queries(&index, &qs);
            rows.push((scan, load, per_face, single_qps, qps, p99, answers));
            kept.push(index);
        }
        let same = rows[0]
            .6
            .iter()
            .zip(&rows[1].6)
            .filter(|(x, y)| x == y)
            .count();
        for (scan, load, per_face, single, qps, p99, _) in &rows {
            println!(
                "| {n} | {scan:?} | {:.2} | {per_face} | {single:.0} | {qps:.0} | {p99:.1} | {same}/{} |",
                load.as_secs_f64(),
                qs.len()
            );
        }
    }
}

/// One pass of the exact index (int8 codes, the default) over `n` faces for each batch
/// size of `batches` ([`ExactIndex::search_many`], no batcher): the median of `rounds`
/// passes, each with the next queries of a fixed list, on the calling thread (the
/// default below 2²⁰ faces) and split over rayon's threads; the answers of both equal.
fn bench_pass(sizes: &[usize], batches: &[usize], rounds: usize) {
    for &n in sizes {
        let g = gallery(n as u64, n, D, 4, 0.6);
        let most = batches.iter().copied().max().unwrap_or(1);
        let qs = probes(n as u64 + 1, &g, most * rounds, 0.6);
        let mut answers = Vec::new();
        for (name, min_rows) in [("one thread", usize::MAX), ("rayon", 0)] {
            let config = IndexConfig {
                parallel_scan_min_rows: min_rows,
                ..Default::default()
            };
            let index = ExactIndex::with_config(D, &config).unwrap();
            index.insert_batch(&g.items).unwrap();
            let mut got = Vec::new();
            for &b in batches {
                let mut ms = Vec::with_capacity(rounds);
                for r in 0..rounds {
                    let batch: Vec<&Embedding> = qs[r * b..][..b].iter().collect();
                    let (hits, t) = timed(|| index.search_many(&batch, K).unwrap());
                    ms.push(t.as_secs_f64() * 1e3);
                    got.push(hits);
                }
                ms.sort_by(f64::total_cmp);
                println!(
                    "| {n} | {name} | {b} | {:.2} | {:.2} | {:.2} |",
                    ms[rounds / 2],
                    ms[0],
                    ms[rounds - 1]
                );
            }
            answers.push(got);
        }
        let same = answers[0]
            .iter()
            .zip(&answers[1])
            .filter(|(x, y)| x == y)
            .count();
        println!(
            "| {n} | equal answers | | {same}/{} | | |",
            answers[0].len()
        );
    }
}

/// Every query once, spread over [`CLIENTS`] threads: answers in query order, q/s and
/// p99 latency (ms).
fn concurrent_queries(index: &ExactIndex, qs: &[Embedding]) -> (Vec<Vec<IdentityHit>>, f64, f64) {
    let (per_thread, elapsed) = timed(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|t| {
                    s.spawn(move || {
                        (t..qs.len())
                            .step_by(CLIENTS)
                            .map(|i| {
                                let (hits, took) = timed(|| index.search(&qs[i], K).unwrap());
                                (i, hits, took)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    let mut latencies: Vec<f64> = per_thread
        .iter()
        .map(|(_, _, t)| t.as_secs_f64() * 1e3)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    let mut answers = vec![Vec::new(); qs.len()];
    for (i, hits, _) in per_thread {
        answers[i] = hits;
    }
    (answers, qs.len() as f64 / elapsed.as_secs_f64(), p99)
}

/// The scan alone at 100 000 × 128: one thread vs rayon chunks.
fn bench_parallel_scan(queries: &[Embedding], base: &[f32]) {
    let n = base.len() / D;
    let mut out = vec![0.0f32; n];
    let ((), serial) = timed(|| queries.iter().for_each(|q| dot_many(base, q, &mut out)));
    let ((), parallel) = timed(|| {
        queries.iter().for_each(|q| {
            out.par_chunks_mut(4096)
                .zip(base.par_chunks(4096 * D))
                .for_each(|(o, rows)| dot_many(rows, q, o))
        })
    });
    let per = |t: Duration| t.as_secs_f64() * 1e3 / queries.len() as f64;
    println!(
        "scan of {n} × {D}: one thread {:.3} ms/query, rayon {:.3} ms/query",
        per(serial),
        per(parallel)
    );
}

/// hnsw_rs alone with its DistL2 vs our UnitCosine (same data, M = 16, ef_c = 200).
fn bench_raw_distances(g: &Gallery, queries: &[Embedding]) {
    let items: Vec<(&[f32], usize)> = g
        .items
        .iter()
        .enumerate()
        .map(|(i, (_, _, v))| (v.as_slice(), i))
        .collect();
    let l2: Hnsw<f32, DistL2> = Hnsw::new(16, items.len(), 16, 200, DistL2);
    let ((), t_l2) = timed(|| l2.parallel_insert_slice(&items));
    let (_, q_l2) = run_queries(queries, |q| l2.search(q, K, 64));
    let uc: Hnsw<f32, UnitCosine> = Hnsw::new(16, items.len(), 16, 200, UnitCosine);
    let ((), t_uc) = timed(|| uc.parallel_insert_slice(&items));
    let (_, q_uc) = run_queries(queries, |q| uc.search(q, K, 64));
    println!(
        "raw hnsw_rs, {} points: DistL2 build {:.2} s, {q_l2:.0} q/s; UnitCosine build {:.2} s, {q_uc:.0} q/s (ef 64)",
        items.len(),
        t_l2.as_secs_f64(),
        t_uc.as_secs_f64()
    );
}

fn main() {
    let args = parse_args();
    println!(
        "threads: {}, queries: {}, D = {D}, k = {K}; HNSW m = {}, ef_construction = {}; \
         load average {}",
        rayon::current_num_threads(),
        args.queries,
        args.hnsw.m,
        args.hnsw.ef_construction,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "\n| faces | index | ef | build s | q/s (identities) | q/s (faces) | recall@10 identities | recall@10 faces | RSS bytes/face |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        bench_size(n, &args);
    }
    if !args.crossover_sizes.is_empty() {
        println!("\n| faces | exact q/s | HNSW q/s | HNSW recall@10 | HNSW / exact |");
        println!("|---|---|---|---|---|");
        bench_crossover(&args.crossover_sizes, args.queries);
    }
    if !args.batched_sizes.is_empty() {
        println!(
            "\n| faces | load s | RSS bytes/face | unbatched q/s | p99 ms | batched q/s | p99 ms | equal answers |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        bench_batched(&args.batched_sizes, args.queries);
    }
    if !args.scan_sizes.is_empty() {
        println!(
            "\n| faces | scan | load s | RSS bytes/face | 1 client q/s | {CLIENTS} clients q/s | p99 ms | equal answers |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        bench_scan(&args.scan_sizes, args.queries);
    }
    if !args.pass_sizes.is_empty() {
        println!("\n| faces | pass | queries | median ms | fastest ms | slowest ms |");
        println!("|---|---|---|---|---|---|");
        bench_pass(&args.pass_sizes, &args.pass_queries, args.pass_rounds);
    }
    if !args.extras {
        return;
    }
    let g = gallery(7, 10_000, D, 4, 0.6);
    let qs = probes(8, &g, args.queries, 0.6);
    println!();
    bench_raw_distances(&g, &qs);
    let big = gallery(9, 100_000, D, 4, 0.6);
    bench_parallel_scan(&qs[..qs.len().min(200)], &matrix(&big));
}
