//! API keys and roles. Keys come in `Authorization: Bearer <key>` or `X-API-Key: <key>`,
//! never in the URL (where proxies and logs keep them): a query parameter named like a
//! key is refused before the request is logged.
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
        .and_then(|v| {
            // The scheme name is case-insensitive (RFC 9110 §11.1).
            let (scheme, key) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
        });
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    bearer
        .or(api_key)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Query parameter names that carry a key in other APIs (compared case-insensitively).
const KEY_PARAMETERS: [&str; 7] = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "x-api-key",
    "access_token",
    "token",
];

/// The name of the first query parameter of `query` that looks like an API key.
pub fn key_parameter(query: &str) -> Option<&str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .find(|name| KEY_PARAMETERS.iter().any(|k| k.eq_ignore_ascii_case(name)))
}

/// Middleware, outermost (before tracing sees the URL): refuse a key in the query string
/// on every route, whether or not keys are configured.
pub async fn refuse_key_in_query(request: Request, next: Next) -> Result<Response, ApiError> {
    if let Some(name) = request.uri().query().and_then(key_parameter) {
        return Err(ApiError::KeyInQuery(name.to_owned()));
    }
    Ok(next.run(request).await)
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
