//! Secrets in configuration: API keys and database URLs never appear in logs or `Debug`.

use serde::{Deserialize, Deserializer};

/// A string that prints as `[redacted]`; read it with [`Secret::expose`].
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself — for comparing or connecting, never for printing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A list of secrets given either as a list (`["k1", "k2"]` in TOML) or as one
/// comma-separated string (environment variables: `FACEPRINT_AUTH__ADMIN_KEYS=k1,k2`).
pub fn secret_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Secret>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        Joined(String),
    }
    let values = match ListOrString::deserialize(deserializer)? {
        ListOrString::List(list) => list,
        ListOrString::Joined(joined) => joined.split(',').map(str::to_owned).collect(),
    };
    Ok(values
        .into_iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(Secret)
        .collect())
}

/// Compare two byte strings in time that depends only on their lengths, so a client
/// cannot find a key one byte at a time by timing rejections.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
