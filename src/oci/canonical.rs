//! The one JSON writer for everything kiln hashes.
//!
//! OCI digests are over exact bytes, so every config, manifest and index goes through here:
//! keys sorted at every level (whatever order the source types keep, `HashMap`s included), no
//! insignificant whitespace. The bytes returned are hashed once and written as they are.

use serde::Serialize;
use serde_json::{Map, Value};

fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn value(v: &impl Serialize) -> Value {
    // Serialising kiln's own types and oci-spec's cannot fail: no non-string map keys.
    sorted(serde_json::to_value(v).expect("serialisable to JSON"))
}

/// Canonical compact bytes, as hashed and stored.
pub fn to_vec(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(&value(v)).expect("serialisable to JSON")
}

/// Canonical pretty text for people and snapshots (sorted keys, trailing newline).
pub fn to_pretty(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(&value(v)).expect("serialisable to JSON");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn keys_sorted_at_every_level() {
        let mut inner = HashMap::new();
        for k in ["zeta", "alpha", "mid"] {
            inner.insert(k.to_string(), 1);
        }
        let mut outer = HashMap::new();
        outer.insert("b".to_string(), inner.clone());
        outer.insert("a".to_string(), inner);
        let text = String::from_utf8(super::to_vec(&outer)).unwrap();
        assert_eq!(text, r#"{"a":{"alpha":1,"mid":1,"zeta":1},"b":{"alpha":1,"mid":1,"zeta":1}}"#);
    }
}
