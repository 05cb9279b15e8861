//! JSON read with every object's keys checked: a key that appears twice in
//! one object (`{"code":"a","code":"b"}`) is refused, naming its path,
//! instead of letting the last one win — a proxy in front of the server
//! might have read the first.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Reads `bytes` as one JSON value; `Err(Some(path))` names the first key
/// found twice in one object (`constraints.zone`, `sessions[1].userId`),
/// `Err(None)` is any other JSON error (the caller reports it).
pub(crate) fn parse_unique(bytes: &[u8]) -> Result<Value, Option<String>> {
    let duplicate = RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let seed = Unique {
        duplicate: &duplicate,
        path: String::new(),
    };
    let value = seed.deserialize(&mut reader).and_then(|v| {
        reader.end()?;
        Ok(v)
    });
    value.map_err(|_| duplicate.into_inner())
}

/// Objects with more keys than this are left to [`parse_unique`] (whose
/// map finds a duplicate without comparing every pair of keys).
const PLAIN_MAX_KEYS: usize = 32;

/// Whether `bytes` is one JSON value that [`parse_unique`] and the number
/// rewriting after it would leave as serde reads it: no key twice in one
/// object, no number written as a float with an integral value that the
/// rewriting would turn into an integer, and no object of more than
/// [`PLAIN_MAX_KEYS`] keys. Reads the body once without building it; a
/// plain body can then be deserialized straight from its bytes. `false`
/// for anything else, including malformed JSON (the full path reports it).
pub(crate) fn is_plain(bytes: &[u8]) -> bool {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    Plain.deserialize(&mut reader).is_ok() && reader.end().is_ok()
}

/// One value read by [`is_plain`]: fails on what is not plain.
#[derive(Clone, Copy)]
struct Plain;

/// An object's key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> DeserializeSeed<'de> for Plain {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Plain {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if integral(v).is_some() {
            Err(E::custom("an integral float"))
        } else {
            Ok(())
        }
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if keys.len() >= PLAIN_MAX_KEYS || keys.contains(&key) {
                return Err(de::Error::custom("not plain"));
            }
            keys.push(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// One value at `path`; records the first duplicate key in `duplicate`.
struct Unique<'a> {
    duplicate: &'a RefCell<Option<String>>,
    path: String,
}

impl Unique<'_> {
    fn child(&self, path: String) -> Self {
        Unique {
            duplicate: self.duplicate,
            path,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
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

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) =
            seq.next_element_seed(self.child(format!("{}[{}]", self.path, items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                let message = format!("duplicate key {path}");
                self.duplicate.borrow_mut().get_or_insert(path);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(self.child(path))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The integer a float with an integral value stands for, when one of
/// `u64` or `i64` holds it (`3600.0`, `-2.0`); `None` for a fraction or a
/// magnitude beyond both.
pub(crate) fn integral(f: f64) -> Option<serde_json::Number> {
    if f.fract() != 0.0 {
        return None;
    }
    let two_to_64 = 2f64.powi(64);
    if (0.0..two_to_64).contains(&f) {
        Some(serde_json::Number::from(f as u64))
    } else if (-two_to_64 / 2.0..0.0).contains(&f) {
        Some(serde_json::Number::from(f as i64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_named_by_their_path() {
        assert_eq!(
            parse_unique(br#"{"code":"a","n":1,"code":"b"}"#),
            Err(Some("code".into()))
        );
        assert_eq!(
            parse_unique(br#"{"c":{"zone":"a","zone":"b"}}"#),
            Err(Some("c.zone".into()))
        );
        assert_eq!(
            parse_unique(br#"{"s":[{"u":1},{"u":1,"u":2}]}"#),
            Err(Some("s[1].u".into()))
        );
        assert_eq!(parse_unique(br#"{"a":1,}"#), Err(None));
        assert_eq!(parse_unique(br#"{"a":1} x"#), Err(None));
        let same: Value =
            serde_json::from_str(r#"{"a":[1,2.5,"x",null,true],"b":{"a":-1}}"#).unwrap();
        assert_eq!(
            parse_unique(br#"{"a":[1,2.5,"x",null,true],"b":{"a":-1}}"#),
            Ok(same)
        );
    }
}
