//! The per-gallery search index as the server uses it: ids are the store's face and
//! identity ids, every call is safe from many threads.
//!
//! TEMPORARY exact scan standing in for `crate::index::GalleryIndex` until the index
//! module lands; only this file changes when it does.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Deserialize;

/// Index parameters (stand-in for `crate::index::IndexConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {}

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("embedding has dimension {got}, index expects {expected}")]
    Dimension { expected: usize, got: usize },
}

/// The best face of one identity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub identity: i64,
    pub face: i64,
    /// Cosine similarity of the query and the face, in [-1, 1].
    pub similarity: f32,
}

/// One gallery's faces.
pub struct SearchIndex {
    dim: usize,
    faces: RwLock<HashMap<i64, (i64, Vec<f32>)>>,
}

impl SearchIndex {
    pub fn new(_config: &IndexConfig, dim: usize) -> SearchIndex {
        SearchIndex {
            dim,
            faces: RwLock::new(HashMap::new()),
        }
    }

    /// Number of faces searchable.
    pub fn len(&self) -> usize {
        self.faces.read().map(|f| f.len()).unwrap_or(0)
    }

    /// Add `(face, identity, unit embedding)` triples.
    pub fn insert_batch(&self, batch: &[(i64, i64, Vec<f32>)]) -> Result<(), IndexError> {
        for (_, _, v) in batch {
            if v.len() != self.dim {
                return Err(IndexError::Dimension {
                    expected: self.dim,
                    got: v.len(),
                });
            }
        }
        let mut faces = self.faces.write().unwrap_or_else(|e| e.into_inner());
        for (face, identity, v) in batch {
            faces.insert(*face, (*identity, v.clone()));
        }
        Ok(())
    }

    pub fn remove_faces(&self, face_ids: &[i64]) {
        let mut faces = self.faces.write().unwrap_or_else(|e| e.into_inner());
        for id in face_ids {
            faces.remove(id);
        }
    }

    /// Top-`k` distinct identities by their best face, most similar first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError> {
        if query.len() != self.dim {
            return Err(IndexError::Dimension {
                expected: self.dim,
                got: query.len(),
            });
        }
        let faces = self.faces.read().unwrap_or_else(|e| e.into_inner());
        let mut best: HashMap<i64, Hit> = HashMap::new();
        for (&face, (identity, v)) in faces.iter() {
            let similarity = v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
            let hit = Hit {
                identity: *identity,
                face,
                similarity,
            };
            best.entry(*identity)
                .and_modify(|h| {
                    if similarity > h.similarity {
                        *h = hit;
                    }
                })
                .or_insert(hit);
        }
        let mut hits: Vec<Hit> = best.into_values().collect();
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        hits.truncate(k);
        Ok(hits)
    }
}
