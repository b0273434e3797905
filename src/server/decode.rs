//! Decoding uploaded images under limits: a header announcing 50 000 × 50 000 pixels is
//! refused before any pixel buffer is allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageError, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use super::config::LimitSettings;
use super::error::ApiError;

/// Decode image number `index` of a request (for error messages) under `limits`.
pub fn decode_image(
    bytes: &[u8],
    index: usize,
    limits: &LimitSettings,
) -> Result<DynamicImage, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::UndecodableImage {
            index,
            reason: "the image is empty".into(),
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::UndecodableImage {
            index,
            reason: e.to_string(),
        })?;
    if reader.format().is_none() {
        return Err(ApiError::UndecodableImage {
            index,
            reason: "not a recognised image format (PNG, JPEG, PGM, BMP, WebP, GIF, TIFF)".into(),
        });
    }
    // The JPEG decoder fills a truncated scan with grey instead of failing; a face cut
    // in half must not be enrolled, so require the end-of-image marker.
    if reader.format() == Some(ImageFormat::Jpeg) && !has_jpeg_end_marker(bytes) {
        return Err(ApiError::UndecodableImage {
            index,
            reason: "truncated JPEG: no end-of-image marker".into(),
        });
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_image_side);
    image_limits.max_image_height = Some(limits.max_image_side);
    image_limits.max_alloc = Some(limits.max_image_alloc_bytes);
    reader.limits(image_limits);
    reader.decode().map_err(|e| match e {
        ImageError::Limits(reason) => ApiError::ImageTooLarge {
            index,
            reason: format!(
                "{reason} (at most {side} × {side} pixels)",
                side = limits.max_image_side
            ),
        },
        other => ApiError::UndecodableImage {
            index,
            reason: other.to_string(),
        },
    })
}

/// Whether the JPEG's end-of-image marker `FF D9` is present (possibly followed by
/// trailing bytes that some encoders append).
fn has_jpeg_end_marker(bytes: &[u8]) -> bool {
    bytes.windows(2).skip(2).any(|w| w == [0xFF, 0xD9])
}

/// Hex SHA-256 of the uploaded bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
