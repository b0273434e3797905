//! The one error type of the HTTP edge and its JSON shape:
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with. `IntoResponse` matches every variant by name, so
/// a new variant forces a decision about its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A field whose value is well-formed but outside what it may be (a target FAR).
    #[error("invalid field `{field}`: {reason}")]
    OutOfRange { field: &'static str, reason: String },
    #[error("unsupported content type {0:?}: send application/json or multipart/form-data")]
    UnsupportedMediaType(String),
    #[error("missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")]
    MissingApiKey,
    #[error(
        "API keys are accepted only in the `Authorization: Bearer <key>` or `X-API-Key` \
         header, never in the URL (found `{0}` in the query string); consider that key \
         exposed and replace it"
    )]
    KeyInQuery(String),
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("this API key's role may not {0}")]
    Forbidden(&'static str),
    #[error("no gallery named {0:?}")]
    GalleryNotFound(String),
    #[error("no identity {identity:?} in gallery {gallery:?}")]
    IdentityNotFound { gallery: String, identity: String },
    #[error("identity {identity:?} has no face {face}")]
    FaceNotFound { identity: String, face: i64 },
    #[error(
        "face {face} of identity {identity:?} has no stored image (database.store_images was off)"
    )]
    FaceImageNotStored { identity: String, face: i64 },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    #[error("the request target is longer than the limit of {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("the request headers are larger than the limit of {limit} bytes or {count} headers")]
    HeadersTooLarge { limit: usize, count: usize },
    #[error("the request body was not received within {ms} ms")]
    BodyTimeout { ms: u64 },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("image {index} is too large to decode: {reason}")]
    ImageTooLarge { index: usize, reason: String },
    #[error("image {index} cannot be decoded: {reason}")]
    UndecodableImage { index: usize, reason: String },
    #[error(
        "no face found in image {index}{}",
        if *too_small > 0 { format!(" ({too_small} too small to embed)") } else { String::new() }
    )]
    NoFace { index: usize, too_small: usize },
    #[error(
        "image {index} is {width}×{height} pixels; a face crop read whole (`detect=false`) \
         must be at least {min} pixels on each side"
    )]
    FaceTooSmall {
        index: usize,
        width: u32,
        height: u32,
        min: u32,
    },
    #[error(
        "image {index} shows {count} faces; enroll one face per image, or say which with `boxes`"
    )]
    SeveralFaces { index: usize, count: usize },
    #[error("the request did not complete within {ms} ms")]
    Timeout { ms: u64 },
    #[error("not ready: {0}")]
    NotReady(String),
    /// A fault of the server; the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Wrap any server-side failure; its text goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(cause.to_string())
    }

    /// The HTTP status and the stable machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedBody(_) => (StatusCode::BAD_REQUEST, "malformed_body"),
            ApiError::InvalidField { .. } => (StatusCode::BAD_REQUEST, "invalid_field"),
            ApiError::OutOfRange { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "out_of_range"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::MissingApiKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            ApiError::KeyInQuery(_) => (StatusCode::BAD_REQUEST, "api_key_in_query"),
            ApiError::InvalidApiKey => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::GalleryNotFound(_) => (StatusCode::NOT_FOUND, "gallery_not_found"),
            ApiError::IdentityNotFound { .. } => (StatusCode::NOT_FOUND, "identity_not_found"),
            ApiError::FaceNotFound { .. } => (StatusCode::NOT_FOUND, "face_not_found"),
            ApiError::FaceImageNotStored { .. } => (StatusCode::NOT_FOUND, "face_image_not_stored"),
            ApiError::RouteNotFound(_) => (StatusCode::NOT_FOUND, "route_not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::ImageTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large"),
            ApiError::UndecodableImage { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "undecodable_image")
            }
            ApiError::NoFace { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "no_face"),
            ApiError::FaceTooSmall { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "face_too_small"),
            ApiError::SeveralFaces { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "several_faces"),
            ApiError::Timeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let body = serde_json::json!({
            "error": { "code": code, "message": self.to_string() }
        });
        (status, Json(body)).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("background task failed: {e}"))
    }
}
