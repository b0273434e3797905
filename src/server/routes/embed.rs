//! `POST /embed` (image → embedding) and `POST /verify` (same person or not).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{expect_images, reading, resolve_threshold};
use crate::detect::FaceBox;
use crate::embedding::Embedding;
use crate::server::error::ApiError;
use crate::server::inference::{AnalysedImage, Reading, analyse};
use crate::server::names::{ExternalId, GalleryName};
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedFields {
    #[serde(default, deserialize_with = "lenient::boolean")]
    detect: Option<bool>,
    #[serde(default, deserialize_with = "lenient::number")]
    max_faces: Option<usize>,
}

/// One face's embedding (`null` when too small to embed).
#[derive(Debug, Serialize)]
pub struct FaceEmbedding {
    #[serde(rename = "box")]
    pub bbox: Option<FaceBox>,
    pub embedded: bool,
    pub embedding: Option<Embedding>,
}

/// An L2-normalised embedding of the largest face (`box`), every face's in `faces`.
#[derive(Debug, Serialize)]
pub struct EmbedResponse {
    pub embedding: Embedding,
    pub dim: usize,
    #[serde(rename = "box")]
    pub bbox: Option<FaceBox>,
    pub faces: Vec<FaceEmbedding>,
    pub model: String,
}

/// An `/embed` request, checked before any work.
struct EmbedRequest {
    image: Vec<u8>,
    reading: Reading,
}

impl EmbedRequest {
    fn parse(state: &AppState, payload: Payload) -> Result<EmbedRequest, ApiError> {
        let fields: EmbedFields = payload.fields_as()?;
        let [image] = expect_images(payload.images, "(field `image`)")?;
        let reading = reading(state, fields.detect, fields.max_faces)?;
        Ok(EmbedRequest { image, reading })
    }
}

/// No face to embed is a 422 `no_face`: there is no embedding to answer with.
pub async fn embed(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<EmbedResponse>, ApiError> {
    let request = EmbedRequest::parse(&state, payload)?;
    let analysed = analyse(&state, vec![request.image], vec![request.reading], false).await?;
    let (face, embedding) = analysed[0].require_face(0)?;
    let (bbox, embedding) = (face.bbox, embedding.clone());
    let faces = analysed
        .into_iter()
        .flat_map(|a| a.faces)
        .map(|f| FaceEmbedding {
            bbox: f.bbox,
            embedded: f.embedding.is_some(),
            embedding: f.embedding,
        })
        .collect();
    Ok(Json(EmbedResponse {
        dim: embedding.len(),
        embedding,
        bbox,
        faces,
        model: state.embedder.version().to_owned(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyFields {
    identity: Option<String>,
    gallery: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    threshold: Option<f32>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    detect: Option<bool>,
    #[serde(default, deserialize_with = "lenient::number")]
    max_faces: Option<usize>,
}

/// One face of the first image against the reference.
#[derive(Debug, Serialize)]
pub struct FaceVerdict {
    #[serde(rename = "box")]
    pub bbox: Option<FaceBox>,
    pub embedded: bool,
    pub same: Option<bool>,
    pub similarity: Option<f32>,
}

/// Whether two faces (or a face and an identity's best face) are the same person. The
/// top level compares the first image's largest face (`box`) with the reference: the
/// second image's largest face (`reference_box`) or the identity; `faces` compares
/// every face of the first image.
#[derive(Debug, Serialize)]
pub struct VerifyResponse {
    pub same: bool,
    pub similarity: f32,
    pub threshold: f32,
    #[serde(rename = "box")]
    pub bbox: Option<FaceBox>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_box: Option<FaceBox>,
    pub faces: Vec<FaceVerdict>,
    pub model: String,
}

/// A `/verify` request, checked before any work: the probe image and its reference.
struct VerifyRequest {
    probe: Vec<u8>,
    reference: Reference,
    reading: Reading,
    threshold: f32,
}

/// What the probe's faces are compared with.
enum Reference {
    /// The largest face of a second image.
    Image(Vec<u8>),
    /// An enrolled identity: the embeddings of its faces (its best face counts).
    Identity(Vec<Embedding>),
}

impl VerifyRequest {
    /// Looks the identity up, if one is named: an unknown one is a 404 like a bad field.
    async fn parse(state: &AppState, payload: Payload) -> Result<VerifyRequest, ApiError> {
        let fields: VerifyFields = payload.fields_as()?;
        let reading = reading(state, fields.detect, fields.max_faces)?;
        let Some(raw) = fields.identity else {
            let [probe, reference] = expect_images(payload.images, "without `identity`")?;
            return Ok(VerifyRequest {
                probe,
                reference: Reference::Image(reference),
                reading,
                threshold: resolve_threshold(state, fields.threshold, None)?,
            });
        };
        let [probe] = expect_images(payload.images, "with `identity`")?;
        let identity = ExternalId::parse(&raw)?;
        let gallery_name = GalleryName::parse(fields.gallery.as_deref())?;
        let gallery = state
            .galleries
            .get(gallery_name.as_str())
            .ok_or_else(|| ApiError::GalleryNotFound(gallery_name.as_str().to_owned()))?;
        let not_found = || ApiError::IdentityNotFound {
            gallery: gallery_name.as_str().to_owned(),
            identity: identity.as_str().to_owned(),
        };
        let detail = state
            .store
            .identity(gallery.id, identity.as_str())
            .await?
            .ok_or_else(not_found)?;
        let faces = state.store.identity_embeddings(detail.id).await?;
        if faces.is_empty() {
            return Err(not_found());
        }
        Ok(VerifyRequest {
            probe,
            reference: Reference::Identity(faces.into_iter().map(|f| f.embedding).collect()),
            reading,
            threshold: resolve_threshold(state, fields.threshold, Some(&gallery))?,
        })
    }
}

/// Two images (`images: [a, b]`), or one image and an `identity` (its best face counts).
/// An image without a face to embed is a 422 `no_face` naming it.
pub async fn verify(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<VerifyResponse>, ApiError> {
    let VerifyRequest {
        probe,
        reference,
        reading: how,
        threshold,
    } = VerifyRequest::parse(&state, payload).await?;
    let (probe, reference_box, references) = match reference {
        Reference::Image(reference) => {
            let images = vec![probe, reference];
            let [probe, reference] = analysed::<2>(&state, images, how).await?;
            probe.require_face(0)?;
            let (face, embedding) = reference.require_face(1)?;
            (probe, face.bbox, vec![embedding.clone()])
        }
        Reference::Identity(references) => {
            let [probe] = analysed::<1>(&state, vec![probe], how).await?;
            probe.require_face(0)?;
            (probe, None, references)
        }
    };
    // The probe's faces' similarity to the reference.
    let score = |e: &Embedding| {
        references
            .iter()
            .map(|r| e.cosine(r))
            .fold(f32::NEG_INFINITY, f32::max)
    };
    verdicts(probe, reference_box, score, threshold, &state)
}

/// The `N` images analysed, each read `how`.
async fn analysed<const N: usize>(
    state: &AppState,
    images: Vec<Vec<u8>>,
    how: Reading,
) -> Result<[AnalysedImage; N], ApiError> {
    let analysed = analyse(state, images, vec![how; N], false).await?;
    <[AnalysedImage; N]>::try_from(analysed).map_err(|_| ApiError::internal("no image"))
}

/// The response: the largest embedded face of `probe` at the top, every face in `faces`.
fn verdicts(
    probe: AnalysedImage,
    reference_box: Option<FaceBox>,
    score: impl Fn(&Embedding) -> f32,
    threshold: f32,
    state: &AppState,
) -> Result<Json<VerifyResponse>, ApiError> {
    let faces: Vec<FaceVerdict> = probe
        .faces
        .iter()
        .map(|f| {
            let similarity = f.embedding.as_ref().map(&score);
            FaceVerdict {
                bbox: f.bbox,
                embedded: similarity.is_some(),
                same: similarity.map(|s| s >= threshold),
                similarity,
            }
        })
        .collect();
    let (bbox, similarity) = faces
        .iter()
        .find_map(|f| f.similarity.map(|s| (f.bbox, s)))
        .ok_or(ApiError::NoFace {
            index: 0,
            too_small: probe.too_small,
        })?;
    Ok(Json(VerifyResponse {
        same: similarity >= threshold,
        similarity,
        threshold,
        bbox,
        reference_box,
        faces,
        model: state.embedder.version().to_owned(),
    }))
}
