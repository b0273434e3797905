//! Request bodies that carry images, in either of two encodings:
//! - `application/json`: `"image": "<base64>"` and/or `"images": ["<base64>", …]`
//!   (standard base64, optionally as a `data:…;base64,` URL) plus other fields;
//! - `multipart/form-data`: file fields named `image` or `images` plus text fields.
//!
//! A field given twice (a repeated JSON key at any depth, a repeated multipart text
//! field) is refused with a 400 naming it; only image fields repeat.
//!
//! Both become a [`Payload`]: the image bytes in order, and the other fields as JSON,
//! which each endpoint then parses into its typed request.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::body_timeout::timed_out;
use super::error::ApiError;
use super::state::AppState;

/// Images and fields of one request.
#[derive(Debug, Default)]
pub struct Payload {
    pub images: Vec<Vec<u8>>,
    pub fields: Map<String, Value>,
}

impl Payload {
    /// The non-image fields as the endpoint's request type (unknown fields are errors if
    /// `T` denies them).
    pub fn fields_as<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_value(Value::Object(self.fields.clone()))
            .map_err(|e| ApiError::MalformedBody(e.to_string()))
    }
}

impl FromRequest<AppState> for Payload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Payload, ApiError> {
        let limit = state.settings.limits.max_body_bytes;
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body_ms = state.settings.limits.body_read_timeout_ms;
        if content_type.starts_with("multipart/form-data") {
            let multipart = Multipart::from_request(req, state)
                .await
                .map_err(|e| ApiError::MalformedBody(e.body_text()))?;
            from_multipart(multipart, limit, body_ms).await
        } else if content_type.starts_with("application/json") || content_type.is_empty() {
            let bytes = Bytes::from_request(req, state).await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit }
                } else if timed_out(&e) {
                    ApiError::BodyTimeout { ms: body_ms }
                } else {
                    ApiError::MalformedBody(e.body_text())
                }
            })?;
            from_json(&bytes)
        } else {
            Err(ApiError::UnsupportedMediaType(content_type))
        }
    }
}

fn from_json(bytes: &[u8]) -> Result<Payload, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedBody("the body is empty".into()));
    }
    let value = super::strict_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::MalformedBody("expected a JSON object".into()));
    };
    let mut images = Vec::new();
    if let Some(image) = fields.remove("image") {
        images.push(base64_image(&image, "image")?);
    }
    match fields.remove("images") {
        None => {}
        Some(Value::Array(list)) => {
            for item in &list {
                images.push(base64_image(item, "images")?);
            }
        }
        Some(_) => {
            return Err(ApiError::InvalidField {
                field: "images",
                reason: "expected an array of base64 strings".into(),
            });
        }
    }
    Ok(Payload { images, fields })
}

fn base64_image(value: &Value, field: &'static str) -> Result<Vec<u8>, ApiError> {
    let Value::String(text) = value else {
        return Err(ApiError::InvalidField {
            field,
            reason: "expected a base64 string".into(),
        });
    };
    // Accept `data:image/png;base64,....` as browsers produce it.
    let encoded = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => text,
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| ApiError::InvalidField {
            field,
            reason: format!("not valid base64: {e}"),
        })
}

async fn from_multipart(
    mut multipart: Multipart,
    limit: usize,
    body_ms: u64,
) -> Result<Payload, ApiError> {
    let mut payload = Payload::default();
    let too_large_or_malformed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else if timed_out(&e) {
            ApiError::BodyTimeout { ms: body_ms }
        } else {
            ApiError::MalformedBody(e.body_text())
        }
    };
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(too_large_or_malformed)?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == "image" || name == "images" || field.file_name().is_some() {
            let bytes = field.bytes().await.map_err(too_large_or_malformed)?;
            payload.images.push(bytes.to_vec());
        } else {
            if payload.fields.contains_key(&name) {
                return Err(ApiError::MalformedBody(format!("duplicate field `{name}`")));
            }
            let text = field.text().await.map_err(too_large_or_malformed)?;
            payload.fields.insert(name, Value::String(text));
        }
    }
    Ok(payload)
}

/// Serde helpers for fields that arrive typed in JSON but as text in multipart forms.
pub mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};
    use serde_json::Value;

    /// An optional number given as a JSON number or as a numeric string.
    pub fn number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: std::str::FromStr + serde::de::DeserializeOwned,
    {
        match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("expected a number, got {s:?}"))),
            Some(other) => serde_json::from_value(other)
                .map(Some)
                .map_err(D::Error::custom),
        }
    }

    /// An optional boolean given as a JSON boolean or as `"true"`/`"false"` (any case).
    pub fn boolean<'de, D>(deserializer: D) -> Result<Option<bool>, D::Error>
    where
        D: Deserializer<'de>,
    {
        match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(D::Error::custom(format!(
                    "expected true or false, got {s:?}"
                ))),
            },
            Some(other) => Err(D::Error::custom(format!(
                "expected true or false, got {other}"
            ))),
        }
    }

    /// Any optional JSON value, given as itself or as a string holding it (multipart).
    pub fn json<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: serde::de::DeserializeOwned,
    {
        let value = match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => serde_json::from_str(&s).map_err(D::Error::custom)?,
            Some(other) => other,
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(D::Error::custom)
    }

    /// An optional JSON object given as an object or as a string holding one.
    pub fn object<'de, D>(
        deserializer: D,
    ) -> Result<Option<serde_json::Map<String, Value>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let value = match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => serde_json::from_str(&s).map_err(D::Error::custom)?,
            Some(other) => other,
        };
        match value {
            Value::Object(map) => Ok(Some(map)),
            _ => Err(D::Error::custom("expected a JSON object")),
        }
    }
}
