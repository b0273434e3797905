//! JSON parsed into a [`Value`] that refuses duplicate object keys at any depth.
//! `serde_json` keeps the last of `{"identity": "a", "identity": "b"}` silently; two
//! parsers in a chain (a proxy that checks the first, this server that used the last)
//! could then disagree about what was sent.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parse `bytes` as JSON; an object with a repeated key is an error naming the key.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The seed and visitor that build a [`Value`], checking keys as objects are read.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate field `{key}`")));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_and_everything_else_parses_as_serde_json_does() {
        for text in [
            r#"{"a": 1, "b": [true, null, -2, 3.5e300, "x"], "c": {"d": {}}}"#,
            r#"[1, 18446744073709551615, -9223372036854775808, 0.1]"#,
            r#""just a string""#,
        ] {
            let strict = from_slice(text.as_bytes()).expect(text);
            let loose: Value = serde_json::from_str(text).expect(text);
            assert_eq!(strict, loose, "{text}");
        }
        for (text, key) in [
            (r#"{"identity": "a", "identity": "b"}"#, "identity"),
            (r#"{"metadata": {"x": 1, "x": 2}}"#, "x"),
            (r#"[{"k": 1}, {"k": 1, "k": 1}]"#, "k"),
        ] {
            let error = from_slice(text.as_bytes()).expect_err(text).to_string();
            assert!(
                error.contains(&format!("duplicate field `{key}`")),
                "{text}: {error}"
            );
        }
        assert!(from_slice(b"{} {}").is_err(), "trailing data");
    }
}
