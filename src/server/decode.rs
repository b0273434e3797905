//! Decoding uploaded images under limits: the header's dimensions and the decoded size
//! they imply are checked, per format, before any pixel buffer is allocated — a header
//! announcing 50 000 × 50 000 pixels costs nothing.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use super::config::LimitSettings;
use super::error::ApiError;

/// Decode image number `index` of a request (for error messages) under `limits`. A
/// decoder that panics on a malformed file is an undecodable image, not a server fault.
pub fn decode_image(
    bytes: &[u8],
    index: usize,
    limits: &LimitSettings,
) -> Result<DynamicImage, ApiError> {
    std::panic::catch_unwind(|| decode_unguarded(bytes, index, limits)).unwrap_or_else(|_| {
        Err(ApiError::UndecodableImage {
            index,
            reason: "the decoder failed on malformed data".into(),
        })
    })
}

fn decode_unguarded(
    bytes: &[u8],
    index: usize,
    limits: &LimitSettings,
) -> Result<DynamicImage, ApiError> {
    let undecodable = |reason: String| ApiError::UndecodableImage { index, reason };
    let too_large = |reason: String| ApiError::ImageTooLarge {
        index,
        reason: format!(
            "{reason} (at most {side} × {side} pixels and {bytes} bytes decoded)",
            side = limits.max_image_side,
            bytes = limits.max_image_alloc_bytes
        ),
    };
    if bytes.is_empty() {
        return Err(undecodable("the image is empty".into()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| undecodable(e.to_string()))?;
    if reader.format().is_none() {
        return Err(undecodable(
            "not a recognised image format (PNG, JPEG, PGM, BMP, WebP, GIF, TIFF)".into(),
        ));
    }
    // The JPEG decoder fills a truncated scan with grey instead of failing; a face cut
    // in half must not be enrolled, so the stream must run to its end-of-image marker.
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_reaches_end(bytes) {
        return Err(undecodable(
            "truncated JPEG: the image data ends before its end-of-image marker".into(),
        ));
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_image_side);
    image_limits.max_image_height = Some(limits.max_image_side);
    image_limits.max_alloc = Some(limits.max_image_alloc_bytes);
    reader.limits(image_limits);
    let map_error = |e: ImageError| match e {
        ImageError::Limits(reason) => too_large(reason.to_string()),
        other => undecodable(other.to_string()),
    };
    let decoder = reader.into_decoder().map_err(map_error)?;
    // Every decoder reports its size from the header; some formats' own limit checks
    // come late or not at all, so check here, the same way for all of them.
    let (width, height) = decoder.dimensions();
    if width.max(height) > limits.max_image_side {
        return Err(too_large(format!("the image is {width} × {height} pixels")));
    }
    if decoder.total_bytes() > limits.max_image_alloc_bytes {
        return Err(too_large(format!(
            "the image is {width} × {height} pixels, {} bytes decoded",
            decoder.total_bytes()
        )));
    }
    DynamicImage::from_decoder(decoder).map_err(map_error)
}

/// Whether a JPEG's marker structure runs from its start to its end-of-image marker.
/// Segments are skipped by their declared lengths (so the `FF D9` of a thumbnail inside
/// an EXIF segment is not taken for the end) and each scan's entropy-coded data is read
/// through to the marker after it.
pub fn jpeg_reaches_end(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    loop {
        if bytes.get(i) != Some(&0xFF) {
            return false;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            // Markers without a length: TEM and the restart markers.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(length) = bytes.get(i..i + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 || i + length > bytes.len() {
            return false;
        }
        i += length;
        if marker == 0xDA {
            match end_of_scan(bytes, i) {
                Some(next) => i = next,
                None => return false,
            }
        }
    }
}

/// Where the entropy-coded data starting at `start` ends: the first `FF` that begins a
/// marker (not a stuffed `FF 00`, a restart marker or a fill byte); `None` if the data
/// runs off the end.
fn end_of_scan(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        i += bytes.get(i..)?.iter().position(|&b| b == 0xFF)?;
        match bytes.get(i + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => i += 1,
            _ => return Some(i),
        }
    }
}

/// Hex SHA-256 of the uploaded bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
