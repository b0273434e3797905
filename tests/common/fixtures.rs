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

/// The model file the server loads in tests: the shipped default model.
///
/// Until `models/default.safetensors` is committed, a small seeded CNN (untrained, on
/// 56×46 inputs) is written to a temporary file instead, so the HTTP behaviour can be
/// tested; the tests that need a *trained* model to tell people apart fail with it.
pub fn model_path() -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    if shipped.exists() {
        return shipped;
    }
    static UNTRAINED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    UNTRAINED.get_or_init(write_untrained_model).clone()
}

/// Whether the shipped, trained model exists; prints why a test stops short when not.
/// Tests that need a model which tells people apart (not just any model) check this.
pub fn has_trained_model(test: &str) -> bool {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/default.safetensors");
    if !shipped.exists() {
        eprintln!(
            "note: models/default.safetensors is not committed yet; {test} skips the checks \
             that need a trained model"
        );
    }
    shipped.exists()
}

fn write_untrained_model() -> PathBuf {
    use faceprint::data::Preprocessing;
    use faceprint::data::preprocess::Normalisation;
    use faceprint::model::arch::ArchSpec;
    use faceprint::model::{ModelFile, ModelMeta, Thresholds};
    let arch = ArchSpec::Cnn {
        input: [56, 46],
        widths: vec![4, 8],
        fc: 32,
        embedding_dim: 16,
        dropout: 0.0,
    };
    let net = arch.build(7).expect("the small CNN builds");
    let meta = ModelMeta {
        format: faceprint::model::FORMAT_VERSION,
        embedding_dim: arch.embedding_dim(),
        architecture: arch,
        preprocessing: Preprocessing {
            height: 56,
            width: 46,
            normalisation: Normalisation::PerImage,
        },
        loss: serde_json::json!({"type": "none", "note": "untrained test model"}),
        training: serde_json::json!({"epochs": 0}),
        thresholds: Thresholds {
            far_0_1pct: 0.99,
            far_1pct: 0.97,
            far_10pct: 0.9,
        },
        flip_average: false,
        version: String::new(),
    };
    // One file shared by every test process: written under a private name, then renamed
    // into place (atomic), so a concurrent reader never sees half a file.
    // The format version in the name keeps a file written by an older layout out of use.
    let path = std::env::temp_dir().join(format!(
        "faceprint-untrained-cnn-seed7-format{}.safetensors",
        faceprint::model::FORMAT_VERSION
    ));
    if !path.exists() {
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        ModelFile::new(meta, net)
            .save(&partial)
            .expect("save the untrained model");
        std::fs::rename(&partial, &path).expect("move the untrained model into place");
    }
    path
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
