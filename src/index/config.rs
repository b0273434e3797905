//! Tuning of the per-gallery index; every field has a measured default.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::IndexError;

/// How a gallery's index is built and searched. Defaults come from
/// `cargo bench --bench index` on 128-d embeddings (BENCHMARKS.md, index section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// HNSW links per node on upper layers (`M`; layer 0 keeps `2M`). 1..=256.
    pub m: usize,
    /// Candidate list size while inserting (`ef_construction`); ≥ 1.
    pub ef_construction: usize,
    /// Candidate list size while searching (`ef`); raised to the neighbours asked for.
    pub ef_search: usize,
    /// Gallery size (live faces) from which HNSW replaces the exact scan. A gallery that
    /// shrinks below half of it goes back to the exact scan.
    pub crossover: usize,
    /// Rebuild the HNSW graph without its deleted points once they are this fraction of
    /// all points in it. In (0, 1].
    pub rebuild_fraction: f64,
    /// ... and at least this many: rebuilding a tiny graph for each deletion is waste.
    pub rebuild_min_deleted: usize,
    /// Most concurrent queries one exact scan answers together. 1..=1024; 1 turns
    /// batching off (each query scans alone, concurrently with the others).
    pub batch_max_queries: usize,
    /// Most microseconds a busy exact index (one that scanned within the last second)
    /// waits for a batch to fill (to as many queries as its last batch held) before
    /// scanning; it never waits longer than its last scan took, nor after a batch of
    /// one. 0..=10 000; 0 never waits.
    pub batch_window_us: u64,
    /// What the exact scan reads: `"int8"` (default) reads compact int8 copies of the
    /// rows and re-scores its few candidates from the f32 rows — the same answers at a
    /// quarter of the memory traffic, for 136 more bytes per face; `"f32"` reads the
    /// f32 rows alone.
    pub scan: ScanPrecision,
    /// Galleries of at least this many faces split each exact pass over the engine's
    /// threads (rayon); smaller ones scan on the querying thread. A split pass queues
    /// behind the network's forward passes on the same threads, which lengthened the
    /// tail of `/identify` under load (p99 249–313 ms against 120–136 at 100 000 faces,
    /// BENCHMARKS.md).
    pub parallel_scan_min_rows: usize,
    /// Where HNSW graphs are saved (one directory per gallery), so that a restart loads
    /// a gallery's graph instead of building it again. `None` keeps graphs in memory.
    /// The server defaults it to `<database file>.graphs` for a SQLite store; with
    /// PostgreSQL each replica needs its own directory, set here.
    pub graph_dir: Option<PathBuf>,
}

/// The rows an exact scan reads ([`IndexConfig::scan`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanPrecision {
    #[default]
    Int8,
    F32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 256,
            // Idle 2-core EPYC (BENCHMARKS.md): the f32 scan answered 8.5× faster than
            // HNSW at 10 000 faces and 2.7× at 100 000 (at HNSW recall 0.90). The int8
            // scan is 4–5× faster again (100 000 faces: 2 741 queries/s on one client;
            // 1 000 000: 167, 354 with 16 clients, exact answers), while hnsw_rs answered
            // 143 at 100 000 faces. The same log-log slope puts equality past 10 million
            // faces; 2 000 000 (about 1.7 GB of index) is as far as memory makes sense
            // on a machine like this one, and past what was measured (1 000 000).
            crossover: 2_000_000,
            rebuild_fraction: 0.2,
            rebuild_min_deleted: 256,
            batch_max_queries: 64,
            // Bounded by the last scan's duration (`super::batch`): microseconds at a
            // thousand faces, milliseconds at a million, where the wider batches raised
            // /identify throughput from 0.45x to 0.7x of a small gallery's (BENCHMARKS.md).
            batch_window_us: 10_000,
            scan: ScanPrecision::Int8,
            parallel_scan_min_rows: DEFAULT_PARALLEL_SCAN_MIN_ROWS,
            graph_dir: None,
        }
    }
}

impl IndexConfig {
    /// Checks every field's range; hnsw_rs exits the process on `m > 256`, so this must
    /// run before a graph is made.
    pub fn validate(&self) -> Result<(), IndexError> {
        let bad = |field, value: String, expected| {
            Err(IndexError::Config {
                field,
                value,
                expected,
            })
        };
        if !(1..=256).contains(&self.m) {
            return bad("m", self.m.to_string(), "1..=256");
        }
        if self.ef_construction == 0 {
            return bad("ef_construction", "0".into(), "at least 1");
        }
        if self.ef_search == 0 {
            return bad("ef_search", "0".into(), "at least 1");
        }
        if !(self.rebuild_fraction > 0.0 && self.rebuild_fraction <= 1.0) {
            return bad(
                "rebuild_fraction",
                self.rebuild_fraction.to_string(),
                "in (0, 1]",
            );
        }
        if !(1..=MAX_BATCH_QUERIES).contains(&self.batch_max_queries) {
            return bad(
                "batch_max_queries",
                self.batch_max_queries.to_string(),
                "1..=1024",
            );
        }
        if self.batch_window_us > MAX_BATCH_WINDOW_US {
            return bad(
                "batch_window_us",
                self.batch_window_us.to_string(),
                "0..=10000",
            );
        }
        Ok(())
    }
}

/// [`IndexConfig::parallel_scan_min_rows`]'s default: 2²⁰ faces (128 MiB of int8 codes
/// at 128 dimensions). A server under load gained nothing from splitting a pass over a
/// million faces (117 / 119 / 110 requests/s split, 108 / 120 / 114 on one thread,
/// p99 313–374 against 260–320 ms). Larger galleries split it, where one thread's pass
/// is longest; how much sooner an idle server answers a single query split is measured
/// in BENCHMARKS.md ("the exact pass on the querying thread").
pub const DEFAULT_PARALLEL_SCAN_MIN_ROWS: usize = 1 << 20;

/// Bounds a batch's answer buffers and its members' wait.
const MAX_BATCH_QUERIES: usize = 1024;
/// A window longer than 10 ms would cost more latency than any batch saves.
const MAX_BATCH_WINDOW_US: u64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_out_of_range_fields_are_named() {
        assert_eq!(IndexConfig::default().validate(), Ok(()));
        let cases = [
            (
                "m",
                IndexConfig {
                    m: 0,
                    ..Default::default()
                },
            ),
            (
                "m",
                IndexConfig {
                    m: 257,
                    ..Default::default()
                },
            ),
            (
                "ef_construction",
                IndexConfig {
                    ef_construction: 0,
                    ..Default::default()
                },
            ),
            (
                "ef_search",
                IndexConfig {
                    ef_search: 0,
                    ..Default::default()
                },
            ),
            (
                "rebuild_fraction",
                IndexConfig {
                    rebuild_fraction: 0.0,
                    ..Default::default()
                },
            ),
            (
                "rebuild_fraction",
                IndexConfig {
                    rebuild_fraction: f64::NAN,
                    ..Default::default()
                },
            ),
            (
                "batch_max_queries",
                IndexConfig {
                    batch_max_queries: 0,
                    ..Default::default()
                },
            ),
            (
                "batch_window_us",
                IndexConfig {
                    batch_window_us: 10_001,
                    ..Default::default()
                },
            ),
        ];
        for (field, config) in cases {
            match config.validate() {
                Err(IndexError::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_are_refused() {
        let c: IndexConfig = serde_json::from_str(r#"{"ef_search": 128}"#).unwrap();
        assert_eq!(c.ef_search, 128);
        assert_eq!(c.m, IndexConfig::default().m);
        assert!(serde_json::from_str::<IndexConfig>(r#"{"ef": 1}"#).is_err());
        let c: IndexConfig = serde_json::from_str(r#"{"scan": "f32"}"#).unwrap();
        assert_eq!(c.scan, ScanPrecision::F32);
        assert!(serde_json::from_str::<IndexConfig>(r#"{"scan": "int4"}"#).is_err());
    }
}
