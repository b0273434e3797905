//! Training and evaluating on the crops the server embeds: every image replaced by the
//! crop of one face, found and cut by the server's detector ([`crate::detect`]).
//! [`face_crop`] is the one place that turns a photograph into that crop.

use std::path::PathBuf;

use image::GrayImage;
use rayon::prelude::*;

use super::error::{DataError, Result};
use super::folder::ImageFolder;
use crate::detect::{FaceBox, FaceDetector, crop_face_in};

/// Which embeddable face of a photograph to crop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The largest: the server's rule for a query.
    #[default]
    Largest,
    /// The one whose box centre is nearest the image centre (ties: the larger), for
    /// photographs framed on one person, as LFW's are.
    NearestCentre,
}

/// The crop of the face `pick` chooses among the embeddable faces `detector` finds in
/// `image`, aligned to the detector's frame; `None` when it finds none.
pub fn face_crop(detector: &FaceDetector, image: &GrayImage, pick: Pick) -> Option<GrayImage> {
    let config = detector.config();
    let faces = detector.detect(image); // largest first
    let mut embeddable = faces.iter().filter(|b| b.embeddable(config));
    let face = match pick {
        Pick::Largest => embeddable.next()?,
        Pick::NearestCentre => {
            let (cx, cy) = (
                f64::from(image.width()) / 2.0,
                f64::from(image.height()) / 2.0,
            );
            let off_centre = |b: &FaceBox| b.centre_distance(cx, cy);
            // `min_by` keeps the first of equal minima: the larger face.
            embeddable.min_by(|a, b| off_centre(a).total_cmp(&off_centre(b)))?
        }
    };
    Some(crop_face_in(image, face, detector.frame()))
}

/// What cropping left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaceCropReport {
    /// Images in which no face large enough to embed was found, in sample order.
    pub no_face: Vec<PathBuf>,
    /// Identities left with fewer than `min_images` crops: (name, crops).
    pub left_out: Vec<(String, usize)>,
}

impl FaceCropReport {
    /// One line for the user, `None` when nothing was left out.
    pub fn message(&self) -> Option<String> {
        if self.no_face.is_empty() && self.left_out.is_empty() {
            return None;
        }
        let quoted: Vec<String> = self
            .no_face
            .iter()
            .take(5)
            .map(|p| p.display().to_string())
            .collect();
        Some(format!(
            "face detection: no face found in {} image(s) ({}{}), left out; {} identit(y/ies) \
             left with too few images: {:?}",
            self.no_face.len(),
            quoted.join(", "),
            if self.no_face.len() > 5 { ", …" } else { "" },
            self.left_out.len(),
            self.left_out
        ))
    }
}

/// `folder` with each image replaced by the aligned crop of the embeddable face `pick`
/// chooses; images without one are dropped, then identities with
/// fewer than `min_images` crops. Fewer than two identities left is an error.
pub fn crop_faces(
    folder: &ImageFolder,
    detector: &FaceDetector,
    min_images: usize,
    pick: Pick,
) -> Result<(ImageFolder, FaceCropReport)> {
    let crops: Vec<Option<GrayImage>> = folder
        .images()
        .par_iter()
        .map(|image| face_crop(detector, image, pick))
        .collect();
    let mut report = FaceCropReport::default();
    let mut per_identity = vec![0usize; folder.identities().len()];
    for (i, crop) in crops.iter().enumerate() {
        match crop {
            Some(_) => per_identity[folder.labels()[i]] += 1,
            None => report.no_face.push(folder.paths()[i].clone()),
        }
    }
    // Kept identities, relabelled in their original order.
    let mut new_label = vec![None; per_identity.len()];
    let mut identities = Vec::new();
    for (label, &count) in per_identity.iter().enumerate() {
        let name = folder.identities()[label].clone();
        if count >= min_images {
            new_label[label] = Some(identities.len());
            identities.push(name);
        } else {
            report.left_out.push((name, count));
        }
    }
    let (mut paths, mut labels, mut images) = (Vec::new(), Vec::new(), Vec::new());
    for (i, crop) in crops.into_iter().enumerate() {
        if let (Some(crop), Some(label)) = (crop, new_label[folder.labels()[i]]) {
            paths.push(folder.paths()[i].clone());
            labels.push(label);
            images.push(crop);
        }
    }
    if identities.len() < 2 {
        return Err(DataError::TooFewIdentities {
            root: folder.root().to_path_buf(),
            found: identities.len(),
            need: 2,
            min_images,
        });
    }
    let cropped = ImageFolder::from_parts(
        folder.root().to_path_buf(),
        identities,
        paths,
        labels,
        images,
    )?;
    Ok((cropped, report))
}
