//! faceprint: face embeddings trained on our own network engine, served over HTTP.
//!
//! Modules, from the bottom up: [`nn`] (the engine), [`data`] (image folders and
//! preprocessing), [`detect`] (finding and cropping faces in photographs), [`model`]
//! (architectures, model files, inference), [`train`] and [`eval`] (learning and judging
//! embeddings), [`index`] (nearest-neighbour search), [`store`] (SQL persistence) and
//! [`server`] (the HTTP API). Beside them, `batch` gathers concurrent callers into one
//! batch (the index's scans and the model's forward passes), and [`embedding`] is the
//! unit-length vector that passes from the model to the index.

pub(crate) mod batch;
pub mod data;
pub mod detect;
pub mod embedding;
pub mod eval;
pub mod index;
pub mod model;
pub mod nn;
pub mod server;
pub mod store;
pub mod train;
