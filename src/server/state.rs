//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::config::Settings;
use super::galleries::Galleries;
use super::metrics::Metrics;
use super::work::PixelBudget;
use crate::detect::FaceDetector;
use crate::model::Embedder;
use crate::store::Store;

/// Shared, cheaply cloned state of a running server.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub embedder: Arc<Embedder>,
    pub detector: Arc<FaceDetector>,
    pub galleries: Arc<Galleries>,
    pub metrics: Arc<Metrics>,
    /// Pixels being decoded and analysed across requests (`limits.max_pixels_in_flight`).
    pub pixels: Arc<PixelBudget>,
    /// Serialises writes (enroll, delete) so the store and the indexes change in the same
    /// order: without it, a delete could reach an index before the enrollment it follows.
    pub writes: Arc<tokio::sync::Mutex<()>>,
    /// True while the server takes traffic: set when it is built (the model is loaded
    /// and the indexes are built before the listener is bound), cleared when shutdown
    /// begins so that `/readyz` turns traffic away while in-flight requests finish.
    pub ready: Arc<AtomicBool>,
    /// False while a replica has lost the change log (PostgreSQL) and not yet caught up.
    pub in_sync: Arc<AtomicBool>,
}
