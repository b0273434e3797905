//! Typed server configuration: defaults, then an optional TOML file, then `FACEPRINT_*`
//! environment variables (`FACEPRINT_<SECTION>__<KEY>`, e.g. `FACEPRINT_SERVER__BIND`).
//! See `faceprint.example.toml` for every setting with its default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::secret::{Secret, secret_list};
use crate::detect::DetectConfig;
use crate::index::IndexConfig;

/// Everything the server reads at start-up.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub model: ModelSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub identify: IdentifySettings,
    pub index: IndexConfig,
    pub sync: SyncSettings,
    pub detect: DetectSettings,
    /// The face detector's settings. Unset (the default): the ones the model was trained
    /// with (`train-embed --detect` records them), else [`DetectConfig::default`].
    pub detector: Option<DetectConfig>,
}

/// Where to listen, and how connections are kept.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Connections open at once; more wait to be accepted. Keep it under the process's
    /// open-file limit (`ulimit -n`) minus the database pool and model files.
    pub max_connections: usize,
    /// A connection must deliver each request's line and headers within this time,
    /// milliseconds, counted from when the server is ready to read it — so this is also
    /// how long an idle keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// On SIGTERM, how long open requests may still run, milliseconds.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// The SQL store.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` (file created if missing) or `postgres://user:pass@host/db`.
    pub url: Secret,
    pub max_connections: u32,
    /// Keep each enrolled image so `faceprint-server reembed` can recompute embeddings
    /// when the model changes.
    pub store_images: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: Secret::new("sqlite://faceprint.db"),
            max_connections: 8,
            store_images: true,
        }
    }
}

/// The embedding model.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    pub path: PathBuf,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            path: PathBuf::from("models/default.safetensors"),
        }
    }
}

/// API keys by role; with no key configured at all, the API is open — which the server
/// refuses on a non-loopback address unless `allow_open` says so.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Keys allowed everything: enroll, delete, galleries, and all queries.
    #[serde(deserialize_with = "secret_list")]
    pub admin_keys: Vec<Secret>,
    /// Keys allowed identify, embed and verify.
    #[serde(deserialize_with = "secret_list")]
    pub query_keys: Vec<Secret>,
    /// Serve with no keys on an address other hosts can reach (anyone there may enroll
    /// and delete). Off by default: such a start is refused.
    pub allow_open: bool,
}

/// Limits against oversized or slow requests.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest request body, bytes (413 above it).
    pub max_body_bytes: usize,
    /// Largest decoded image width or height, pixels.
    pub max_image_side: u32,
    /// Most memory one image decode may allocate, bytes.
    pub max_image_alloc_bytes: u64,
    /// Pixels decoded and analysed at once across all requests (from image headers,
    /// before decoding); requests beyond it wait, within their deadline. Memory grows
    /// with pixels in flight (see BENCHMARKS.md), so this bounds the peak.
    pub max_pixels_in_flight: u64,
    /// Most images in one enrollment.
    pub max_images_per_request: usize,
    /// The body must arrive within this time of the request head, milliseconds (408
    /// `body_timeout` after it): a client trickling its body frees its slot early.
    pub body_read_timeout_ms: u64,
    /// Whole-request deadline, milliseconds (503 `timeout` after it).
    pub request_timeout_ms: u64,
    /// Requests processed at once; more wait in line (inside the deadline).
    pub max_concurrent_requests: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_body_bytes: 16 << 20,
            max_image_side: 4096,
            max_image_alloc_bytes: 256 << 20,
            max_pixels_in_flight: 4096 * 4096,
            max_images_per_request: 32,
            body_read_timeout_ms: 20_000,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 64,
        }
    }
}

/// Open-set decisions.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentifySettings {
    /// Threshold when neither the request nor the gallery sets one: `"gallery"` (the
    /// threshold at which at most `far` of strangers are let into a gallery of its
    /// current size, from the model's impostor tail), one of the model's fixed
    /// thresholds, or a cosine similarity.
    pub default_threshold: ThresholdPolicy,
    /// Target false-accept rate of the `"gallery"` policy, in (0, 1).
    #[serde(deserialize_with = "far_in_range")]
    pub far: f64,
    /// Candidates returned when the request does not say.
    pub default_top_k: usize,
    /// Most candidates a request may ask for.
    pub max_top_k: usize,
}

impl Default for IdentifySettings {
    fn default() -> Self {
        IdentifySettings {
            default_threshold: ThresholdPolicy::Calibrated(CalibratedFar::Gallery),
            far: 0.01,
            default_top_k: 5,
            max_top_k: 100,
        }
    }
}

/// `identify.far`: a rate strictly between 0 and 1.
fn far_in_range<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let far = f64::deserialize(deserializer)?;
    if far.is_finite() && far > 0.0 && far < 1.0 {
        Ok(far)
    } else {
        Err(serde::de::Error::custom(format!(
            "identify.far: expected a false-accept rate strictly between 0 and 1, got {far}"
        )))
    }
}

/// Face detection in requests.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSettings {
    /// Whether requests detect faces when they do not say (`detect`); `false` takes
    /// every image as one face crop (aligned on its landmarks when the model learned
    /// aligned faces).
    pub enabled: bool,
    /// Faces reported and embedded per image when the request does not say (`max_faces`).
    pub default_max_faces: usize,
    /// Most faces a request may ask for.
    pub max_faces_limit: usize,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            enabled: true,
            default_max_faces: 10,
            max_faces_limit: 100,
        }
    }
}

/// A threshold: one of the model's calibrated values, or a fixed cosine similarity.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ThresholdPolicy {
    Calibrated(CalibratedFar),
    Fixed(f32),
}

/// The model's calibrated thresholds: for the gallery's size at `identify.far` (models
/// without an impostor tail fall back to the fixed value at or below that FAR), or the
/// fixed ones the model file carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum CalibratedFar {
    #[serde(rename = "gallery")]
    Gallery,
    #[serde(rename = "far_0_1pct")]
    Far0_1Pct,
    #[serde(rename = "far_1pct")]
    Far1Pct,
    #[serde(rename = "far_10pct")]
    Far10Pct,
}

/// Replicas on PostgreSQL: following the change log that other replicas write.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Catch up at least this often, milliseconds, even without a notification.
    pub poll_interval_ms: u64,
    /// Diff every gallery against the database this often, seconds.
    pub reconcile_interval_s: u64,
    /// Change-log rows older than this are deleted, hours.
    pub retention_hours: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            poll_interval_ms: 1_000,
            reconcile_interval_s: 300,
            retention_hours: 168,
        }
    }
}
