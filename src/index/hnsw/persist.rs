//! The graph on disk, so that a restart loads it instead of building it again.
//!
//! A saved graph is one directory: hnsw_rs's dump (`graph.hnsw.graph`, `graph.hnsw.data`)
//! and `slots.bin`, which says for each point which face and identity it is and whether it
//! is live, with the parameters the graph was built with and a CRC-32 of each dump file.
//!
//! - **Atomic**: everything is written to `DIR.tmp`, synced, and renamed over `DIR` (the
//!   old copy is moved aside to `DIR.old` first, then removed). `DIR` never holds half a
//!   graph: a crash leaves the old one, the new one, or — between the two renames —
//!   none, and the next start then builds the graph from the store. Leftover `DIR.tmp`
//!   and `DIR.old` are replaced by the next save.
//! - **Checked before hnsw_rs reads it**: hnsw_rs panics on a malformed dump and reads
//!   lengths from it (NOTES.md), so the files must match the lengths and CRCs recorded in
//!   `slots.bin` first. A panic inside hnsw_rs is caught all the same.
//! - **A cache, not a record**: the SQL store stays the source of truth. A loaded graph is
//!   reconciled with it (`GalleryIndex::restore_batch`), so a stale or foreign graph costs
//!   start-up time, never a wrong answer.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;

use super::distance::UnitCosine;
use super::state::{Graph, Slot, State};
use crate::index::IndexConfig;

/// hnsw_rs's file names are `graph.hnsw.graph` and `graph.hnsw.data`.
const BASENAME: &str = "graph";
const SLOTS: &str = "slots.bin";
const MAGIC: &[u8; 8] = b"FPHNSW01";
/// Bytes of one slot record: face (i64), identity (i64), live (u8).
const SLOT_BYTES: usize = 17;

/// Why a saved graph could not be written or used; the caller builds the graph instead.
#[derive(Debug, thiserror::Error)]
pub enum GraphFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GraphFileError + '_ {
    move |source| GraphFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn invalid(path: &Path, reason: impl Into<String>) -> GraphFileError {
    GraphFileError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn dump_files(dir: &Path) -> [PathBuf; 2] {
    [
        dir.join(format!("{BASENAME}.hnsw.graph")),
        dir.join(format!("{BASENAME}.hnsw.data")),
    ]
}

/// `DIR.suffix`, beside `DIR`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Length and CRC-32 of a file's bytes.
fn checksum(path: &Path) -> Result<(u64, u32), GraphFileError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_error(path))?;
        if n == 0 {
            return Ok((len, hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

fn sync(path: &Path) -> Result<(), GraphFileError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_error(path))
}

/// What `slots.bin` records besides the slots.
#[derive(Debug, PartialEq)]
struct Header {
    dim: u64,
    m: u64,
    ef_construction: u64,
    /// Length and CRC-32 of each dump file, as [`dump_files`] names them.
    files: [(u64, u32); 2],
}

fn encode(header: &Header, slots: &[Slot]) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + slots.len() * SLOT_BYTES);
    out.extend_from_slice(MAGIC);
    for x in [
        header.dim,
        header.m,
        header.ef_construction,
        slots.len() as u64,
    ] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    for (len, crc) in header.files {
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
    }
    for s in slots {
        out.extend_from_slice(&s.face.to_le_bytes());
        out.extend_from_slice(&s.identity.to_le_bytes());
        out.push(u8::from(s.live));
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<(Header, Vec<Slot>), String> {
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or("shorter than its checksum")?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err("checksum mismatch (the file is damaged)".into());
    }
    let rest = body.strip_prefix(MAGIC).ok_or("not a faceprint graph")?;
    let mut at = 0;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = rest.get(at..at + n).ok_or("truncated")?;
        at += n;
        Ok(s)
    };
    let mut u64_at = || take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let (dim, m, ef_construction, count) = (u64_at()?, u64_at()?, u64_at()?, u64_at()?);
    let mut files = [(0, 0); 2];
    for f in &mut files {
        let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        *f = (len, crc);
    }
    let records = take(usize::try_from(count).map_err(|_| "slot count")? * SLOT_BYTES)?;
    let slots = records
        .chunks_exact(SLOT_BYTES)
        .map(|r| Slot {
            face: i64::from_le_bytes(r[0..8].try_into().expect("8 bytes")),
            identity: i64::from_le_bytes(r[8..16].try_into().expect("8 bytes")),
            live: r[16] != 0,
        })
        .collect();
    if at != rest.len() {
        return Err("trailing bytes".into());
    }
    let header = Header {
        dim,
        m,
        ef_construction,
        files,
    };
    Ok((header, slots))
}

/// Writes `graph` and its `slots` to `dir`, replacing what was there. The caller makes
/// sure nothing is inserted into `graph` meanwhile (hnsw_rs's dump is not consistent
/// under concurrent inserts).
pub(crate) fn save(
    dir: &Path,
    graph: &Graph,
    slots: &[Slot],
    dim: usize,
    config: &IndexConfig,
) -> Result<(), GraphFileError> {
    if graph.get_nb_point() == 0 {
        return Err(invalid(dir, "an empty graph is not saved"));
    }
    let tmp = sibling(dir, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
    let written = graph
        .file_dump(&tmp, BASENAME)
        .map_err(|e| invalid(&tmp, format!("hnsw_rs could not dump the graph: {e:#}")))?;
    if written != BASENAME {
        return Err(invalid(&tmp, format!("hnsw_rs wrote {written:?}")));
    }
    let [graph_file, data_file] = dump_files(&tmp);
    let header = Header {
        dim: dim as u64,
        m: config.m as u64,
        ef_construction: config.ef_construction as u64,
        files: [checksum(&graph_file)?, checksum(&data_file)?],
    };
    let slots_file = tmp.join(SLOTS);
    std::fs::write(&slots_file, encode(&header, slots)).map_err(io_error(&slots_file))?;
    for f in [&graph_file, &data_file, &slots_file, &tmp] {
        sync(f)?;
    }
    let old = sibling(dir, "old");
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
        }
        std::fs::rename(dir, &old).map_err(io_error(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io_error(dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync(parent)?;
    }
    if old.exists() {
        // The new graph is in place; a leftover old copy only costs disk.
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// The graph saved in `dir`, as a state of generation 0. Fails, without panicking, if
/// the files are missing, damaged, or were built for another dimension, `m` or
/// `ef_construction` (changed settings mean a new graph).
pub(crate) fn load(dir: &Path, dim: usize, config: &IndexConfig) -> Result<State, GraphFileError> {
    let slots_file = dir.join(SLOTS);
    let bytes = std::fs::read(&slots_file).map_err(io_error(&slots_file))?;
    let (header, mut slots) = decode(&bytes).map_err(|r| invalid(&slots_file, r))?;
    let wanted = (dim as u64, config.m as u64, config.ef_construction as u64);
    let found = (header.dim, header.m, header.ef_construction);
    if found != wanted {
        return Err(invalid(
            &slots_file,
            format!("built for (dim, m, ef_construction) = {found:?}, configured {wanted:?}"),
        ));
    }
    for (file, expected) in dump_files(dir).iter().zip(header.files) {
        let got = checksum(file)?;
        if got != expected {
            return Err(invalid(
                file,
                format!("length and CRC {got:?}, slots.bin recorded {expected:?}"),
            ));
        }
    }
    // The loaded graph borrows its loader for its whole life (hnsw_rs issue #19); the
    // loader is a few hundred bytes, leaked once per load.
    let graph: Graph = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let loader: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
        loader.load_hnsw::<f32, UnitCosine>()
    }))
    .map_err(|_| invalid(dir, "hnsw_rs panicked while loading the graph"))?
    .map_err(|e| invalid(dir, format!("hnsw_rs could not load the graph: {e:#}")))?;

    // Each slot's vector, from its point; a slot without one (its insert had not reached
    // the graph when it was saved) is dead.
    let mut vectors = vec![0.0f32; slots.len() * dim];
    let mut has_point = vec![false; slots.len()];
    for point in graph.get_point_indexation() {
        let j = point.get_origin_id();
        let v = point.get_v();
        if j >= slots.len() || has_point[j] || v.len() != dim {
            return Err(invalid(dir, format!("point {j} does not match slots.bin")));
        }
        vectors[j * dim..(j + 1) * dim].copy_from_slice(v);
        has_point[j] = true;
    }
    let mut by_face = HashMap::new();
    let mut identities: HashMap<_, usize> = HashMap::new();
    for (j, s) in slots.iter_mut().enumerate() {
        s.live &= has_point[j];
        if s.live {
            if by_face.insert(s.face, j).is_some() {
                return Err(invalid(
                    &slots_file,
                    format!("face {} is live twice", s.face),
                ));
            }
            *identities.entry(s.identity).or_default() += 1;
        }
    }
    let dead = slots.len() - by_face.len();
    Ok(State {
        graph: std::sync::Arc::new(graph),
        slots,
        vectors,
        by_face,
        identities,
        dead,
        generation: 0,
        rebuilding: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> Vec<Slot> {
        vec![
            Slot {
                face: 7,
                identity: 70,
                live: true,
            },
            Slot {
                face: -3,
                identity: i64::MAX,
                live: false,
            },
        ]
    }

    fn header() -> Header {
        Header {
            dim: 128,
            m: 16,
            ef_construction: 200,
            files: [(10, 0xdead_beef), (u64::MAX, 1)],
        }
    }

    #[test]
    fn slots_file_round_trips() {
        let (h, s) = decode(&encode(&header(), &slots())).unwrap();
        assert_eq!(h, header());
        assert_eq!(s, slots());
    }

    #[test]
    fn every_damaged_byte_and_every_truncation_is_refused() {
        let good = encode(&header(), &slots());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flipped byte {i}");
            assert!(decode(&good[..i]).is_err(), "truncated to {i}");
        }
    }

    /// Bytes hnsw_rs did not write, behind checksums that match them, reach hnsw_rs only
    /// in this test: its panic (or error) becomes an `Err`, not a crash.
    #[test]
    fn a_graph_hnsw_rs_cannot_read_is_an_error_even_with_matching_checksums() {
        let config = IndexConfig::default();
        let graph = super::super::state::new_graph(&config, 64);
        let dim = 8;
        let vectors: Vec<Vec<f32>> = (0..64)
            .map(|i| {
                let v: Vec<f32> = (0..dim)
                    .map(|j| ((i * 7 + j * 3) % 11) as f32 + 1.0)
                    .collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / n).collect()
            })
            .collect();
        for (i, v) in vectors.iter().enumerate() {
            graph.insert_slice((v, i));
        }
        let slots: Vec<Slot> = (0..64)
            .map(|i| Slot {
                face: i,
                identity: i / 2,
                live: true,
            })
            .collect();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("g");
        save(&dir, &graph, &slots, dim, &config).unwrap();
        assert_eq!(load(&dir, dim, &config).unwrap().slots, slots);

        let [graph_file, _] = dump_files(&dir);
        let mut bytes = std::fs::read(&graph_file).unwrap();
        bytes[..4].copy_from_slice(b"junk");
        std::fs::write(&graph_file, &bytes).unwrap();
        let slots_file = dir.join(SLOTS);
        let (mut header, slots) = decode(&std::fs::read(&slots_file).unwrap()).unwrap();
        header.files[0] = checksum(&graph_file).unwrap();
        std::fs::write(&slots_file, encode(&header, &slots)).unwrap();
        let err = load(&dir, dim, &config).err().expect("refused");
        assert!(err.to_string().contains("hnsw_rs"), "{err}");
    }

    #[test]
    fn siblings_sit_beside_the_directory() {
        assert_eq!(
            sibling(Path::new("/var/graphs/gallery-1"), "tmp"),
            Path::new("/var/graphs/gallery-1.tmp")
        );
        assert_eq!(sibling(Path::new("g"), "old"), Path::new("g.old"));
    }
}
