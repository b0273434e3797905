//! API keys and roles. Keys come in `Authorization: Bearer <key>` or `X-API-Key: <key>`.
//! With no key configured the API is open; otherwise `admin` keys may do everything and
//! `query` keys may identify, embed and verify.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use super::config::AuthSettings;
use super::error::ApiError;
use super::secret::constant_time_eq;
use super::state::AppState;

/// What a route requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Query,
}

/// Check the request's key against `required`.
pub fn authorize(auth: &AuthSettings, headers: &HeaderMap, required: Role) -> Result<(), ApiError> {
    if auth.admin_keys.is_empty() && auth.query_keys.is_empty() {
        return Ok(());
    }
    let key = presented_key(headers).ok_or(ApiError::MissingApiKey)?;
    let matches = |keys: &[super::secret::Secret]| {
        keys.iter()
            .any(|k| constant_time_eq(k.expose().as_bytes(), key.as_bytes()))
    };
    if matches(&auth.admin_keys) {
        return Ok(());
    }
    if matches(&auth.query_keys) {
        return match required {
            Role::Query => Ok(()),
            Role::Admin => Err(ApiError::Forbidden("enroll, delete or manage galleries")),
        };
    }
    Err(ApiError::InvalidApiKey)
}

fn presented_key(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    bearer
        .or(api_key)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Middleware for routes that change data.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authorize(&state.settings.auth, request.headers(), Role::Admin)?;
    Ok(next.run(request).await)
}

/// Middleware for query routes.
pub async fn require_query(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authorize(&state.settings.auth, request.headers(), Role::Query)?;
    Ok(next.run(request).await)
}
