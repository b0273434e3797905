//! Names parsed once at the edge: an identity's external id and a gallery's name.

use unicode_normalization::UnicodeNormalization;

use super::error::ApiError;

/// The gallery used when a request names none.
pub const DEFAULT_GALLERY: &str = "default";

/// Longest external id, in characters.
const MAX_EXTERNAL_ID_CHARS: usize = 256;
/// Longest gallery name, in characters.
const MAX_GALLERY_CHARS: usize = 64;

/// A client's name for a person: 1–256 characters in Unicode NFC (so the same name typed
/// two ways is one identity), with no control characters and no invisible formatting
/// characters (zero-width spaces, bidi overrides…) that would make two names look alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(raw: &str) -> Result<ExternalId, ApiError> {
        let raw: String = raw.nfc().collect();
        let raw = raw.as_str();
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
        if let Some(c) = raw.chars().find(|&c| is_format_char(c)) {
            return Err(ApiError::InvalidField {
                field: "identity",
                reason: format!(
                    "invisible formatting character U+{:04X} is not allowed",
                    u32::from(c)
                ),
            });
        }
        Ok(ExternalId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unicode general category Cf (format characters: soft hyphen, zero-width and joiner
/// characters, bidi marks, embeddings, overrides and isolates, the BOM, tags…) as of
/// Unicode 16, plus the interlinear annotation and object replacement characters.
fn is_format_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFC
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
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
            ("ali\u{200B}ce", false, "a zero-width space"),
            ("\u{202E}ecila", false, "a right-to-left override"),
            ("a\u{2066}b\u{2069}", false, "bidi isolates"),
            ("\u{FEFF}alice", false, "a byte-order mark"),
        ];
        for (raw, ok, why) in cases {
            assert_eq!(
                ExternalId::parse(raw).is_ok(),
                ok,
                "identity {raw:?}: {why}"
            );
        }
        assert!(ExternalId::parse(&"x".repeat(257)).is_err(), "too long");
        let composed = ExternalId::parse("Zo\u{00EB}").expect("composed");
        let decomposed = ExternalId::parse("Zoe\u{0308}").expect("decomposed");
        assert_eq!(
            composed, decomposed,
            "one name typed two ways is one identity"
        );
        assert!(GalleryName::parse(None).expect("default").is_default());
        assert!(GalleryName::parse(Some("staff-2026.v1")).is_ok());
        assert!(GalleryName::parse(Some("no spaces")).is_err());
        assert!(GalleryName::parse(Some("")).is_err());
    }
}
