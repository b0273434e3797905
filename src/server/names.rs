//! Names parsed once at the edge: an identity's external id and a gallery's name.

use super::error::ApiError;

/// The gallery used when a request names none.
pub const DEFAULT_GALLERY: &str = "default";

/// Longest external id, in characters.
const MAX_EXTERNAL_ID_CHARS: usize = 256;
/// Longest gallery name, in characters.
const MAX_GALLERY_CHARS: usize = 64;

/// A client's name for a person: 1–256 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(raw: &str) -> Result<ExternalId, ApiError> {
        let chars = raw.chars().count();
        if raw.trim().is_empty() || chars > MAX_EXTERNAL_ID_CHARS {
            return Err(ApiError::InvalidField {
                field: "identity",
                reason: format!(
                    "expected 1 to {MAX_EXTERNAL_ID_CHARS} characters, not blank; got {chars}"
                ),
            });
        }
        if raw.chars().any(char::is_control) {
            return Err(ApiError::InvalidField {
                field: "identity",
                reason: "control characters are not allowed".into(),
            });
        }
        Ok(ExternalId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A gallery name: 1–64 characters from `A–Z a–z 0–9 _ - .`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GalleryName(String);

impl GalleryName {
    /// `None` means the default gallery.
    pub fn parse(raw: Option<&str>) -> Result<GalleryName, ApiError> {
        let raw = raw.unwrap_or(DEFAULT_GALLERY);
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if raw.is_empty() || raw.len() > MAX_GALLERY_CHARS || !raw.chars().all(valid_char) {
            return Err(ApiError::InvalidField {
                field: "gallery",
                reason: format!(
                    "expected 1 to {MAX_GALLERY_CHARS} characters from A-Z a-z 0-9 _ - .; got {raw:?}"
                ),
            });
        }
        Ok(GalleryName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_GALLERY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_once_at_the_edge() {
        let cases = [
            ("alice", true, "a plain name"),
            ("Zoë O'Brien", true, "unicode and punctuation"),
            ("", false, "empty"),
            ("   ", false, "blank"),
            ("a\nb", false, "a control character"),
        ];
        for (raw, ok, why) in cases {
            assert_eq!(
                ExternalId::parse(raw).is_ok(),
                ok,
                "identity {raw:?}: {why}"
            );
        }
        assert!(ExternalId::parse(&"x".repeat(257)).is_err(), "too long");
        assert!(GalleryName::parse(None).expect("default").is_default());
        assert!(GalleryName::parse(Some("staff-2026.v1")).is_ok());
        assert!(GalleryName::parse(Some("no spaces")).is_err());
        assert!(GalleryName::parse(Some("")).is_err());
    }
}
