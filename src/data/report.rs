use std::path::{Path, PathBuf};

/// How many paths a warning quotes before it only counts.
const QUOTED_PATHS: usize = 5;

/// What a scan skipped, so a caller can print or check it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    /// Files that could not be decoded, with the decoder's reason, in path order.
    pub undecodable: Vec<(PathBuf, String)>,
    /// Identities left out for having too few decodable images: (name, images).
    pub left_out: Vec<(String, usize)>,
    /// Non-hidden files directly under the root (not in an identity folder).
    pub loose_files: usize,
}

impl ScanReport {
    /// Nothing was skipped.
    pub fn is_clean(&self) -> bool {
        self.undecodable.is_empty() && self.left_out.is_empty() && self.loose_files == 0
    }

    /// One human-readable paragraph, `None` when clean.
    pub fn message(&self, root: &Path) -> Option<String> {
        if self.is_clean() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.undecodable.is_empty() {
            let quoted: Vec<String> = self
                .undecodable
                .iter()
                .take(QUOTED_PATHS)
                .map(|(p, why)| format!("{} ({why})", p.display()))
                .collect();
            let more = self.undecodable.len().saturating_sub(QUOTED_PATHS);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            parts.push(format!(
                "skipped {} undecodable file(s): {}{tail}",
                self.undecodable.len(),
                quoted.join("; ")
            ));
        }
        if !self.left_out.is_empty() {
            let names: Vec<String> = self
                .left_out
                .iter()
                .map(|(name, n)| format!("{name} ({n} image(s))"))
                .collect();
            parts.push(format!(
                "left out {} identity folder(s) with too few images: {}",
                self.left_out.len(),
                names.join(", ")
            ));
        }
        if self.loose_files > 0 {
            parts.push(format!(
                "ignored {} file(s) directly under the root (images belong in one sub-folder per identity)",
                self.loose_files
            ));
        }
        Some(format!("{}: {}", root.display(), parts.join("; ")))
    }

    /// Logs [`Self::message`] as one `tracing` warning, if there is anything to say.
    pub fn warn(&self, root: &Path) {
        if let Some(message) = self.message(root) {
            tracing::warn!("{message}");
        }
    }
}
