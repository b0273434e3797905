//! Face images under `tests/fixtures/server/<identity>/<n>.png` (ORL faces, 92×112 grey)
//! and the model file the server under test loads.

use std::path::PathBuf;

/// The bytes of image `n` (1–3) of fixture identity `who` (`s1`–`s4`).
pub fn face(who: &str, n: u32) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/server")
        .join(who)
        .join(format!("{n}.png"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The model file the server loads in tests: the shipped default model, committed
/// under `models/` (a checkout without it is broken, and the tests say so).
pub fn model_path() -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    assert!(
        shipped.exists(),
        "{} is missing: it is committed with the repository (scripts/ship-default.sh \
         rebuilds it)",
        shipped.display()
    );
    shipped
}

/// A PNG whose header claims `width` × `height` pixels, with no pixel data behind it.
pub fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no interlace
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png
}

/// A JPEG of fixture `s1/1` cut off after half its bytes.
pub fn truncated_jpeg() -> Vec<u8> {
    let image = image::load_from_memory(&face("s1", 1)).expect("fixture decodes");
    let mut jpeg = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .expect("encode jpeg");
    jpeg.truncate(jpeg.len() / 2);
    jpeg
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Standard base64 of `bytes`.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
