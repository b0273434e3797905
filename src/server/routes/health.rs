//! Probes, metrics, the API description, and the fallbacks.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, Uri, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: not shutting down, in step with the change log, database reachable. The
/// model and the indexes are loaded before the server binds its port, so while it
/// answers at all they are there. A gallery past the HNSW crossover answers from its
/// exact index; `indexes` shows the HNSW graph still `building` behind it.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::Acquire) {
        return Err(ApiError::NotReady("shutting down".into()));
    }
    if !state.in_sync.load(Ordering::Acquire) {
        return Err(ApiError::NotReady(
            "lost the database: answering from the last known indexes".into(),
        ));
    }
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness: database unreachable");
        ApiError::NotReady("database unreachable".into())
    })?;
    Ok(Json(json!({
        "status": "ready",
        "model": state.embedder.version(),
        "dim": state.embedder.dim(),
        "indexes": state.galleries.index_status(),
    })))
}

/// Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(&state.galleries.sizes());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// The OpenAPI 3.1 description of every route.
pub async fn openapi() -> Json<Value> {
    Json(crate::server::openapi::document())
}

/// Unknown paths get the JSON error shape too.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound(format!("{method} {}", uri.path()))
}
