//! Routes, roles and the layers every request goes through.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use super::auth::{refuse_key_in_query, require_admin, require_query};
use super::body_timeout::limit_body_time;
use super::error::ApiError;
use super::head_limits::limit_request_head;
use super::metrics::record_metrics;
use super::routes::{detect, embed, enroll, galleries, health, identify, identities, status};
use super::state::AppState;

/// The whole API with its layers, outermost first: a key in the URL refused (before the
/// URL is logged), request-line and header limits, tracing, metrics, panic → 500; then,
/// for every route but the probes, the deadline and concurrency limit (→ 503 in the JSON
/// shape); the body limit.
pub fn router(state: AppState) -> Router {
    let limits = state.settings.limits.clone();
    let admin = Router::new()
        .route("/enroll", post(enroll::enroll))
        .route("/identities", get(identities::list))
        .route(
            "/identities/{identity}",
            get(identities::get).delete(identities::delete),
        )
        .route(
            "/identities/{identity}/faces/{face_id}",
            delete(identities::delete_face),
        )
        .route(
            "/identities/{identity}/faces/{face_id}/image",
            get(identities::face_image),
        )
        .route("/galleries", get(galleries::list))
        .route(
            "/galleries/{gallery}",
            get(galleries::get).put(galleries::put),
        )
        .route_layer(from_fn_with_state(state.clone(), require_admin));
    let query = Router::new()
        .route("/identify", post(identify::identify))
        .route("/detect", post(detect::detect))
        .route("/embed", post(embed::embed))
        .route("/verify", post(embed::verify))
        .route_layer(from_fn_with_state(state.clone(), require_query));
    // Probes answer beside the request limit, never queued behind slow requests: an
    // orchestrator must not restart a busy but healthy server.
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    let timeout_ms = limits.request_timeout_ms;
    let limited = Router::new()
        .merge(admin)
        .merge(query)
        .route("/status", get(status::status))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .merge(super::web::routes())
        .fallback(health::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(
                    limits.body_read_timeout_ms,
                    limit_body_time,
                ))
                .layer(HandleErrorLayer::new(
                    move |error: tower::BoxError| async move {
                        if error.is::<tower::timeout::error::Elapsed>() {
                            ApiError::Timeout { ms: timeout_ms }
                        } else {
                            ApiError::internal(error)
                        }
                    },
                ))
                .layer(TimeoutLayer::new(Duration::from_millis(timeout_ms)))
                .layer(GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests.max(1),
                )),
        );
    Router::new()
        .merge(probes)
        .merge(limited)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(refuse_key_in_query))
                .layer(from_fn(limit_request_head))
                .layer(TraceLayer::new_for_http())
                .layer(from_fn_with_state(state.metrics.clone(), record_metrics))
                .layer(from_fn(json_method_not_allowed))
                .layer(CatchPanicLayer::custom(
                    |_panic: Box<dyn std::any::Any + Send>| {
                        ApiError::internal("a handler panicked").into_response()
                    },
                )),
        )
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// axum answers a known path with the wrong method by an empty 405; give it the JSON
/// error shape like every other error.
async fn json_method_not_allowed(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let mut replaced = ApiError::MethodNotAllowed(format!("{method} {path}")).into_response();
        if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
            replaced
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow.clone());
        }
        return replaced;
    }
    response
}
