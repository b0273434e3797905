//! Limits on the request line and headers, answered in the JSON error shape: 414 for a
//! request target longer than [`MAX_URI_BYTES`], 431 for headers over
//! [`MAX_HEADER_BYTES`] in total or more than [`MAX_HEADERS`] of them. The HTTP parser's
//! own limits sit above these (see `serve`), so it is this layer that answers.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// Longest request target (path and query), bytes.
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Largest total of header names and values, bytes.
pub const MAX_HEADER_BYTES: usize = 16 << 10;
/// Most header fields.
pub const MAX_HEADERS: usize = 64;

/// Middleware: refuse an oversized request line or header block before anything else.
pub async fn limit_request_head(request: Request, next: Next) -> Result<Response, ApiError> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
            count: MAX_HEADERS,
        });
    }
    Ok(next.run(request).await)
}
