//! An image-folder dataset: `root/<identity>/<image>`, one sub-folder per identity.
//!
//! Decisions (tested in `tests/data_folder.rs`):
//! - Identities and files are sorted by name (byte order), so labels and sample order are
//!   the same on every machine. Label `i` is `identities()[i]`.
//! - Hidden entries (name starting with `.`) are ignored, folders and files alike.
//! - Files directly under `root` are not images of anyone: ignored and counted.
//! - Every other file is decoded by content (`image` 0.25: PGM, PNG, JPEG, BMP, WebP,
//!   GIF, TIFF) in parallel; an undecodable one is skipped and listed in the
//!   [`ScanReport`] (one `tracing` warning for all of them).
//! - An identity with fewer than [`ScanOptions::min_images`] decodable images (default 2:
//!   one image has no positive pair to learn from nor anything to probe with) is left
//!   out and named in the report.
//! - Fewer than two identities left is an error ([`DataError::TooFewIdentities`]):
//!   nothing can be told apart.
//!
//! Images are kept as 8-bit greyscale, the first step of [`crate::data::Preprocessing`]
//! (`DynamicImage::to_luma8`), so the server, converting the same way, sees the same pixels.

use std::path::{Path, PathBuf};

use image::GrayImage;
use rayon::prelude::*;

use super::error::{DataError, Result};
use super::report::ScanReport;

/// Options of [`ImageFolder::scan_with`].
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Identities with fewer decodable images are left out (reported). Default 2.
    pub min_images: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { min_images: 2 }
    }
}

/// A decoded image folder: `images()[i]` belongs to `identities()[labels()[i]]`.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    identities: Vec<String>,
    paths: Vec<PathBuf>,
    labels: Vec<usize>,
    images: Vec<GrayImage>,
    report: ScanReport,
}

impl ImageFolder {
    /// Scans `root` with the default [`ScanOptions`].
    pub fn scan(root: impl AsRef<Path>) -> Result<ImageFolder> {
        Self::scan_with(root, &ScanOptions::default())
    }

    /// Scans and decodes `root`; see the module documentation for the rules.
    pub fn scan_with(root: impl AsRef<Path>, options: &ScanOptions) -> Result<ImageFolder> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(DataError::NotADirectory { path: root });
        }
        let mut report = ScanReport::default();
        // (identity name, its decodable images); files are (group index, path).
        let mut groups: Vec<(String, Vec<(PathBuf, GrayImage)>)> = Vec::new();
        let mut files: Vec<(usize, PathBuf)> = Vec::new();
        for entry in sorted_visible_entries(&root)? {
            if entry.is_dir() {
                for file in sorted_visible_entries(&entry)? {
                    if file.is_file() {
                        files.push((groups.len(), file));
                    }
                }
                groups.push((file_name(&entry), Vec::new()));
            } else {
                report.loose_files += 1;
            }
        }

        let decoded: Vec<std::result::Result<GrayImage, String>> =
            files.par_iter().map(|(_, path)| decode(path)).collect();
        for ((group, path), result) in files.into_iter().zip(decoded) {
            match result {
                Ok(image) => groups[group].1.push((path, image)),
                Err(reason) => report.undecodable.push((path, reason)),
            }
        }

        let mut folder = ImageFolder {
            root: root.clone(),
            identities: Vec::new(),
            paths: Vec::new(),
            labels: Vec::new(),
            images: Vec::new(),
            report: ScanReport::default(),
        };
        for (identity, items) in groups {
            if items.len() < options.min_images {
                report.left_out.push((identity, items.len()));
                continue;
            }
            let label = folder.identities.len();
            folder.identities.push(identity);
            for (path, image) in items {
                folder.paths.push(path);
                folder.labels.push(label);
                folder.images.push(image);
            }
        }
        report.warn(&root);
        if folder.identities.len() < 2 {
            return Err(DataError::TooFewIdentities {
                root,
                found: folder.identities.len(),
                need: 2,
                min_images: options.min_images,
            });
        }
        folder.report = report;
        Ok(folder)
    }

    /// Builds a folder from already decoded parts (tests, subsets). Labels must index
    /// `identities`; all vectors must have the same length.
    pub fn from_parts(
        root: PathBuf,
        identities: Vec<String>,
        paths: Vec<PathBuf>,
        labels: Vec<usize>,
        images: Vec<GrayImage>,
    ) -> Result<ImageFolder> {
        if paths.len() != labels.len() || images.len() != labels.len() {
            return Err(DataError::Invalid(format!(
                "image folder parts differ in length: {} paths, {} labels, {} images",
                paths.len(),
                labels.len(),
                images.len()
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= identities.len()) {
            return Err(DataError::Invalid(format!(
                "label {bad} out of range for {} identities",
                identities.len()
            )));
        }
        Ok(ImageFolder {
            root,
            identities,
            paths,
            labels,
            images,
            report: ScanReport::default(),
        })
    }

    /// The folder restricted to the given identities (indices into `identities()`),
    /// relabelled `0..ids.len()` in the order given. Used for identity-disjoint splits.
    pub fn subset(&self, ids: &[usize]) -> Result<ImageFolder> {
        let mut new_label = vec![None; self.identities.len()];
        for (new, &old) in ids.iter().enumerate() {
            let slot = new_label.get_mut(old).ok_or_else(|| {
                DataError::Invalid(format!(
                    "identity {old} out of range for {} identities",
                    self.identities.len()
                ))
            })?;
            *slot = Some(new);
        }
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| new_label[self.labels[i]].is_some())
            .collect();
        Ok(ImageFolder {
            root: self.root.clone(),
            identities: ids.iter().map(|&i| self.identities[i].clone()).collect(),
            paths: keep.iter().map(|&i| self.paths[i].clone()).collect(),
            labels: keep
                .iter()
                .filter_map(|&i| new_label[self.labels[i]])
                .collect(),
            images: keep.iter().map(|&i| self.images[i].clone()).collect(),
            report: self.report.clone(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Identity names, sorted; label `i` names `identities()[i]`.
    pub fn identities(&self) -> &[String] {
        &self.identities
    }
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
    /// Decoded 8-bit greyscale images, in sample order.
    pub fn images(&self) -> &[GrayImage] {
        &self.images
    }
    /// What the scan skipped.
    pub fn report(&self) -> &ScanReport {
        &self.report
    }
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Sample indices of each identity: `by_identity()[label]`.
    pub fn by_identity(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.identities.len()];
        for (i, &l) in self.labels.iter().enumerate() {
            out[l].push(i);
        }
        out
    }
}

/// Decodes one file by content (not by extension) to 8-bit greyscale.
pub fn decode(path: &Path) -> std::result::Result<GrayImage, String> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let image = reader.decode().map_err(|e| e.to_string())?;
    Ok(image.to_luma8())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Entries of `dir` whose name does not start with `.`, sorted by name (also the order
/// `faceprint-server import` walks a tree in).
pub(crate) fn sorted_visible_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

impl ImageFolder {
    /// Several folders as one, identities renamed `<folder name>/<identity>` so that
    /// equal names in different databases stay different people. Labels follow the
    /// order of `folders`.
    pub fn merge(folders: &[ImageFolder]) -> Result<ImageFolder> {
        let mut merged = ImageFolder {
            root: PathBuf::new(),
            identities: Vec::new(),
            paths: Vec::new(),
            labels: Vec::new(),
            images: Vec::new(),
            report: ScanReport::default(),
        };
        for folder in folders {
            let offset = merged.identities.len();
            let prefix = file_name(&folder.root);
            merged
                .identities
                .extend(folder.identities.iter().map(|i| format!("{prefix}/{i}")));
            merged.paths.extend_from_slice(&folder.paths);
            merged
                .labels
                .extend(folder.labels.iter().map(|l| l + offset));
            merged.images.extend_from_slice(&folder.images);
        }
        if merged.identities.len() < 2 {
            return Err(DataError::TooFewIdentities {
                root: merged.root,
                found: merged.identities.len(),
                need: 2,
                min_images: 1,
            });
        }
        Ok(merged)
    }
}
