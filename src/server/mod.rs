//! The HTTP API and the web page: configuration, start-up, routes, errors, auth, limits
//! and metrics.
//!
//! [`Application::build`] loads the model, opens the store (running migrations), refuses
//! embeddings of another model version, builds one index per gallery and binds the
//! listener; [`Application::run_until_stopped`] serves until SIGTERM or ctrl-c.

mod auth;
mod backup;
mod body_timeout;
pub mod config;
mod config_load;
mod decision;
mod decode;
pub mod error;
mod follow;
mod galleries;
mod head_limits;
mod healthcheck;
mod import;
mod inference;
pub mod memory;
mod metrics;
mod names;
pub mod openapi;
mod payload;
mod reembed;
mod router;
mod routes;
mod secret;
mod serve;
mod startup;
mod state;
mod strict_json;
mod web;
mod work;

pub use backup::{BackupReport, RestoreReport, backup, restore};
pub use config::Settings;
pub use config_load::ConfigError;
pub use error::ApiError;
pub use healthcheck::{HealthcheckError, healthcheck};
pub use import::{ImportError, ImportOptions, ImportReport, TreeError, import};
pub use names::DEFAULT_GALLERY;
pub use reembed::{ReembedError, ReembedReport, reembed};
pub use secret::Secret;
pub use startup::{Application, StartupError};
