//! `faceprint-server reembed --model NEW`: recompute every stored face's embedding with a
//! new model from its stored image, so the server can start with that model.

use std::path::Path;

use image::GrayImage;

use super::config::Settings;
use super::decode::decode_image;
use super::inference;
use super::startup::{StartupError, detector_for};
use crate::detect::{FaceDetector, Frame, align::align_in};
use crate::model::Embedder;
use crate::store::Store;

/// Images decoded and embedded per batch (and per transaction).
const BATCH: i64 = 64;

/// Why re-embedding stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReembedError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "{0} face(s) of another model have no stored image and cannot be re-embedded \
         (they were enrolled with database.store_images = false); delete and re-enroll them"
    )]
    MissingImages(i64),
    #[error("face {face}: stored image cannot be decoded: {reason}")]
    Undecodable { face: i64, reason: String },
    #[error("model failed: {0}")]
    Model(String),
}

/// What `reembed` did.
#[derive(Debug)]
pub struct ReembedReport {
    pub model_version: String,
    pub faces: usize,
}

/// A stored crop in another model's frame, re-aligned to `frame`.
///
/// What is stored is the crop the old model embedded; a crop detected in a photograph
/// is that model's frame, its landmarks at that frame's template. So a stored image of
/// exactly one frame's size that is not the new model's frame is taken as such a crop
/// and warped from that template to the new one (from dlib's 150×150 chip to the tighter
/// 96×112 frame loses nothing; the other way, the margin the chip needs is filled by
/// repeating the border). Anything else (a `detect=false` image of another size) is
/// read as the server reads a `detect=false` crop for the new model
/// (`inference::read_whole`): aligned on its landmarks when `aligner` is given (the
/// new model learned aligned faces), else as it is.
fn reframe(image: GrayImage, frame: Frame, aligner: Option<&FaceDetector>) -> GrayImage {
    let size = image.dimensions();
    if size == frame.size() {
        return image;
    }
    let old = Frame::ALL.into_iter().find(|f| f.size() == size);
    match old.and_then(|old| align_in(&image, old.template(), frame)) {
        Some(aligned) => aligned,
        None => match aligner {
            Some(detector) => inference::aligned_whole(image, detector),
            None => image,
        },
    }
}

/// Re-embed every face not made by the model at `model_path`. Each batch is one
/// transaction, so an interrupted run can simply be started again.
pub async fn reembed(
    settings: &Settings,
    model_path: &Path,
) -> Result<ReembedReport, ReembedError> {
    let embedder = {
        let path = model_path.to_owned();
        tokio::task::spawn_blocking(move || Embedder::load(&path))
            .await
            .map_err(StartupError::from)?
            .map_err(|e| super::startup::model_error(model_path, e))?
    };
    let store = Store::connect(
        settings.database.url.expose(),
        settings.database.max_connections,
    )
    .await
    .map_err(StartupError::from)?;
    let version = embedder.version().to_owned();
    let missing = store.count_stale_without_image(&version).await?;
    if missing > 0 {
        return Err(ReembedError::MissingImages(missing));
    }
    let frame = embedder.meta().frame;
    let aligner = if embedder.meta().learned_aligned_faces() {
        Some(std::sync::Arc::new(detector_for(settings, &embedder)?))
    } else {
        None
    };
    let embedder = std::sync::Arc::new(embedder);
    let limits = settings.limits.clone();
    let mut done = 0;
    let mut after = 0;
    loop {
        let page = store.stale_images_page(&version, after, BATCH).await?;
        let Some(last) = page.last() else { break };
        after = last.face_id;
        let worker = std::sync::Arc::clone(&embedder);
        let limits = limits.clone();
        let aligner = aligner.clone();
        let updates = tokio::task::spawn_blocking(move || {
            let images = page
                .iter()
                .map(|s| {
                    decode_image(&s.image, 0, &limits)
                        .map(|image| reframe(image.into_luma8(), frame, aligner.as_deref()))
                        .map_err(|e| ReembedError::Undecodable {
                            face: s.face_id,
                            reason: e.to_string(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let embeddings = worker
                .embed(&images)
                .map_err(|e| ReembedError::Model(e.to_string()))?;
            Ok::<_, ReembedError>(
                page.iter()
                    .map(|s| s.face_id)
                    .zip(embeddings)
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(StartupError::from)??;
        store.replace_embeddings(&version, &updates).await?;
        done += updates.len();
        tracing::info!(faces = done, "re-embedded");
    }
    store.close().await;
    Ok(ReembedReport {
        model_version: version,
        faces: done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn a_crop_of_the_other_frame_is_realigned_and_other_sizes_are_left_alone() {
        let chip = GrayImage::from_fn(150, 150, |x, y| Luma([((x + 2 * y) % 256) as u8]));
        let arcface = reframe(chip.clone(), Frame::Arcface, None);
        assert_eq!((arcface.width(), arcface.height()), Frame::Arcface.size());
        // Already the new model's frame, or no frame's size: unchanged.
        assert_eq!(reframe(chip.clone(), Frame::Dlib, None), chip);
        let other = GrayImage::new(92, 112);
        assert_eq!(reframe(other.clone(), Frame::Dlib, None), other);
        let back = reframe(arcface, Frame::Dlib, None);
        assert_eq!((back.width(), back.height()), (150, 150));
    }

    #[test]
    fn a_face_crop_sent_whole_is_aligned_for_a_model_of_aligned_faces() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/detect/orl_s6_1.pgm"
        );
        let crop = image::open(path).expect("fixture").into_luma8();
        let detector = FaceDetector::new(crate::detect::DetectConfig::default())
            .expect("detector")
            .with_frame(Frame::Dlib);
        let aligned = reframe(crop.clone(), Frame::Dlib, Some(&detector));
        assert_eq!((aligned.width(), aligned.height()), Frame::Dlib.size());
        // Its face now sits on the frame's template: the landmarks O-Net finds in the
        // whole aligned crop lie closer to the template's than those of the crop merely
        // resized to the frame, and within 10 pixels of them (in 150).
        let off = |image: &GrayImage| -> f32 {
            let found = detector
                .whole_crop(image)
                .expect("landmarks")
                .landmarks
                .map(|[x, y]| crate::detect::Point { x, y });
            let t = Frame::Dlib.template();
            let sum: f32 = found
                .iter()
                .zip(t)
                .map(|(p, t)| ((p.x - t[0]).powi(2) + (p.y - t[1]).powi(2)).sqrt())
                .sum();
            sum / 5.0
        };
        let resized =
            image::imageops::resize(&crop, 150, 150, image::imageops::FilterType::Triangle);
        let (aligned_off, resized_off) = (off(&aligned), off(&resized));
        assert!(
            aligned_off < 10.0 && aligned_off < resized_off,
            "mean distance to the template: aligned {aligned_off:.1} px, resized {resized_off:.1} px"
        );
        // Without an aligner (a model of unaligned crops), the crop stays as it came.
        assert!(reframe(crop.clone(), Frame::Dlib, None) == crop);
    }
}
