//! One chunk of identity folders turned into enrollments: files read and hashed, those
//! already stored left out, the rest decoded, cropped and embedded as one batch.
//! Blocking work (decoding in parallel on rayon, inference): run it off the runtime.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use image::GrayImage;
use rayon::prelude::*;

use super::tree::IdentityFolder;
use crate::data::faces::{Pick, face_crop};
use crate::detect::FaceDetector;
use crate::embedding::Embedding;
use crate::model::Embedder;
use crate::server::config::LimitSettings;
use crate::server::decode::{decode_image, sha256_hex};
use crate::server::inference::{aligned_whole, png};
use crate::store::{NewEnrollment, NewFace};

/// Crops per forward pass (see `prepare`); each rayon worker runs its own passes.
const EMBED_PART: usize = 16;

/// Image hashes already stored, by external id (one gallery).
pub type Stored = HashMap<String, HashSet<String>>;

/// What every chunk needs.
pub struct Context {
    pub embedder: Arc<Embedder>,
    pub detector: Arc<FaceDetector>,
    /// Find the largest face in each image (photographs); else each image is a crop.
    pub detect: bool,
    pub limits: LimitSettings,
    pub store_images: bool,
    pub gallery: String,
}

/// A chunk ready to store.
#[derive(Default)]
pub struct Prepared {
    /// One per identity with at least one new face.
    pub enrollments: Vec<NewEnrollment>,
    /// Files whose exact bytes the identity already has (stored, or earlier in its folder).
    pub already_stored: usize,
    /// Files left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    pub files: usize,
}

/// A new face's image hash and the image to store with it (if images are stored).
type NewFaceFile = (String, Option<Vec<u8>>);

/// One file after reading: a face to embed, a duplicate, or a reason to skip it.
enum Read {
    Face {
        crop: GrayImage,
        sha256: String,
        stored: Option<Vec<u8>>,
    },
    Duplicate,
    Skip(String),
}

/// Reads, checks and embeds `folders` (see the module docs).
pub fn prepare(
    ctx: &Context,
    folders: &[IdentityFolder],
    stored: &Stored,
) -> Result<Prepared, String> {
    let mut out = Prepared::default();
    // (folder, its new faces as (hash, image to store)), for folders with any.
    let mut per_identity: Vec<(usize, Vec<NewFaceFile>)> = Vec::new();
    let mut crops = Vec::new();
    // Every file of the chunk in one parallel pass: a pass per folder waited at each
    // folder's end for its slowest file while the other core idled.
    let files: Vec<(&PathBuf, Option<&HashSet<String>>)> = folders
        .iter()
        .flat_map(|folder| {
            let known = stored.get(&folder.external_id);
            folder.files.iter().map(move |f| (f, known))
        })
        .collect();
    let mut read = files
        .into_par_iter()
        .map(|(f, known)| read_face(ctx, f, known))
        .collect::<Vec<Read>>()
        .into_iter();
    for (i, folder) in folders.iter().enumerate() {
        out.files += folder.files.len();
        let mut seen = HashSet::new();
        let mut faces = Vec::new();
        let reads = read.by_ref().take(folder.files.len());
        for (path, r) in folder.files.iter().zip(reads) {
            match r {
                Read::Face {
                    crop,
                    sha256,
                    stored,
                } => {
                    if !seen.insert(sha256.clone()) {
                        out.already_stored += 1;
                    } else {
                        crops.push(crop);
                        faces.push((sha256, stored));
                    }
                }
                Read::Duplicate => out.already_stored += 1,
                Read::Skip(reason) => out.skipped.push((path.clone(), reason)),
            }
        }
        if !faces.is_empty() {
            per_identity.push((i, faces));
        }
    }
    // Passes of EMBED_PART crops spread over rayon, so both cores stay busy throughout:
    // 8 a pass embedded Yale B 3-4% faster than one, and 16 another 3-6% faster than 8
    // (at two threads a pass of 16 is what lets the default network's 8×8 maps take
    // Winograd's form eight images at a time, `conv2d::winograd_images`; BENCHMARKS.md,
    // "Bulk import").
    let parts: Vec<Vec<Embedding>> = crops
        .par_chunks(EMBED_PART)
        .map(|part| ctx.embedder.embed(part))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the model failed: {e}"))?;
    let mut embeddings = parts.into_iter().flatten();
    let version = ctx.embedder.version().to_owned();
    for (i, faces) in per_identity {
        let faces = faces
            .into_iter()
            .map(|(image_sha256, image)| {
                let embedding = embeddings
                    .next()
                    .ok_or("the model returned fewer embeddings than faces")?;
                Ok(NewFace {
                    embedding,
                    image_sha256,
                    image,
                })
            })
            .collect::<Result<_, String>>()?;
        out.enrollments.push(NewEnrollment {
            gallery: ctx.gallery.clone(),
            external_id: folders[i].external_id.clone(),
            metadata: None,
            model_version: version.clone(),
            faces,
        });
    }
    Ok(out)
}

/// Reads one file into the crop the server would embed for it; a file whose bytes are
/// `known` (stored by an earlier run) is not decoded at all, so a resumed import
/// quickly passes over what is done.
fn read_face(ctx: &Context, path: &PathBuf, known: Option<&HashSet<String>>) -> Read {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Read::Skip(format!("cannot read: {e}")),
    };
    let sha256 = sha256_hex(&bytes);
    if known.is_some_and(|k| k.contains(&sha256)) {
        return Read::Duplicate;
    }
    let image = match decode_image(&bytes, 0, &ctx.limits) {
        Ok(image) => image,
        Err(e) => return Read::Skip(e.to_string()),
    };
    let min = ctx.detector.config().min_embed_size;
    if ctx.detect {
        let Some(crop) = face_crop(&ctx.detector, &image.into_luma8(), Pick::Largest) else {
            return Read::Skip("no face found".into());
        };
        // What `/enroll` stores for a detected face: the crop, lossless.
        let stored = match ctx.store_images.then(|| png(&crop)).transpose() {
            Ok(s) => s,
            Err(e) => return Read::Skip(e.to_string()),
        };
        return Read::Face {
            crop,
            sha256,
            stored,
        };
    }
    if image.width().min(image.height()) < min {
        return Read::Skip(format!(
            "{}×{} is smaller than the {min} pixels a face crop needs",
            image.width(),
            image.height()
        ));
    }
    // Read as `/enroll` reads a `detect=false` crop; the original is stored, as there.
    let crop = if ctx.embedder.meta().learned_aligned_faces() {
        aligned_whole(image.into_luma8(), &ctx.detector)
    } else {
        image.into_luma8()
    };
    Read::Face {
        crop,
        sha256,
        stored: ctx.store_images.then_some(bytes),
    }
}
