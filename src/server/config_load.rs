//! Layering configuration: defaults ← TOML file ← `FACEPRINT_<SECTION>__<KEY>` variables.

use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use super::config::Settings;

/// Prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "FACEPRINT_";
/// Separates the section from the key in a variable name (`FACEPRINT_LIMITS__MAX_BODY_BYTES`).
pub const ENV_SEPARATOR: &str = "__";

/// Why configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration (file {file} and FACEPRINT_* variables): {source}")]
    Invalid {
        file: String,
        source: Box<toml::de::Error>,
    },
}

impl Settings {
    /// Defaults, overridden by `file` (if given), overridden by the `FACEPRINT_*` entries
    /// of `env` (pass `std::env::vars()`; tests pass their own).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut table = match file {
            None => Table::new(),
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: shown.clone(),
                    source,
                })?;
                text.parse::<Table>().map_err(|source| ConfigError::Parse {
                    path: shown,
                    source: Box::new(source),
                })?
            }
        };
        for (name, raw) in env {
            if let Some(path) = env_path(&name) {
                insert_path(&mut table, &path, env_value(&raw));
            }
        }
        let file = file.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string());
        Settings::deserialize(Value::Table(table)).map_err(|source| ConfigError::Invalid {
            file,
            source: Box::new(source),
        })
    }
}

/// `FACEPRINT_LIMITS__MAX_BODY_BYTES` → `["limits", "max_body_bytes"]`; variables without
/// the section separator (such as `FACEPRINT_CONFIG`) are not settings.
fn env_path(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if !rest.contains(ENV_SEPARATOR) {
        return None;
    }
    Some(rest.split(ENV_SEPARATOR).map(str::to_lowercase).collect())
}

/// A variable's value as a TOML value: integers, floats and booleans keep their type,
/// anything else is a string.
fn env_value(raw: &str) -> Value {
    if let Ok(v) = raw.parse::<i64>() {
        return Value::Integer(v);
    }
    if let Ok(v) = raw.parse::<f64>()
        && v.is_finite()
    {
        return Value::Float(v);
    }
    match raw {
        "true" => Value::Boolean(true),
        "false" => Value::Boolean(false),
        _ => Value::String(raw.to_owned()),
    }
}

fn insert_path(table: &mut Table, path: &[String], value: Value) {
    match path {
        [] => {}
        [key] => {
            table.insert(key.clone(), value);
        }
        [key, rest @ ..] => {
            let entry = table
                .entry(key.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            if let Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{CalibratedFar, ThresholdPolicy};
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_sqlite_on_localhost_8080_with_the_shipped_model() {
        let settings = Settings::load(None, env(&[])).expect("defaults");
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database.url.expose(), "sqlite://faceprint.db");
        assert_eq!(
            settings.model.path.to_str(),
            Some("models/default.safetensors")
        );
        assert_eq!(
            settings.identify.default_threshold,
            ThresholdPolicy::Calibrated(CalibratedFar::Gallery)
        );
        assert_eq!(settings.identify.far, 0.01);
        assert!(settings.auth.admin_keys.is_empty());
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("faceprint.toml");
        std::fs::write(
            &file,
            "[server]\nbind = \"0.0.0.0:9000\"\n[limits]\nmax_body_bytes = 1000\n\
             [identify]\ndefault_threshold = 0.5\n",
        )
        .expect("write config");
        let settings = Settings::load(
            Some(&file),
            env(&[
                ("FACEPRINT_LIMITS__MAX_BODY_BYTES", "2000"),
                ("FACEPRINT_AUTH__ADMIN_KEYS", "k1, k2"),
                ("FACEPRINT_CONFIG", "ignored: not a setting"),
                ("FACEPRINT_TEST_DATABASE_URL", "ignored: not a setting"),
                ("HOME", "/root"),
            ]),
        )
        .expect("layered");
        assert_eq!(settings.server.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(settings.limits.max_body_bytes, 2000);
        assert_eq!(
            settings.identify.default_threshold,
            ThresholdPolicy::Fixed(0.5)
        );
        let keys: Vec<_> = settings
            .auth
            .admin_keys
            .iter()
            .map(|k| k.expose())
            .collect();
        assert_eq!(keys, ["k1", "k2"]);
    }

    #[test]
    fn the_example_file_parses_and_holds_the_defaults() {
        let example =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("faceprint.example.toml");
        let from_file = Settings::load(Some(&example), env(&[])).expect("example parses");
        let defaults = Settings::load(None, env(&[])).expect("defaults");
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn a_misspelt_setting_is_an_error_naming_it() {
        let err = Settings::load(None, env(&[("FACEPRINT_LIMITS__MAX_BODY_BYTE", "1")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("max_body_byte"), "{err}");
    }

    #[test]
    fn debug_output_hides_keys_and_database_url() {
        let settings = Settings::load(
            None,
            env(&[
                ("FACEPRINT_AUTH__QUERY_KEYS", "sekrit-key"),
                ("FACEPRINT_DATABASE__URL", "postgres://u:pw-sekrit@h/db"),
            ]),
        )
        .expect("settings");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
    }
}
