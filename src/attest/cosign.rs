//! Cosign's simple-signing payload: the JSON document a cosign image signature signs, naming
//! the image by its manifest digest. kiln writes it byte for byte as cosign does (Go's
//! `encoding/json` of `payload.SimpleContainerImage`), so `cosign verify` accepts kiln's
//! signatures and kiln reads cosign's.

use crate::oci::digest::Digest;
use serde_json::Value;

/// The media type of the layer holding a simple-signing payload in a cosign signature image.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The annotation on that layer holding the base64 signature over the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The `critical.type` of every cosign image signature.
const TYPE: &str = "cosign container image signature";

/// The payload signing `manifest_digest` as the image `docker_reference` (a repository, no
/// tag or digest, as cosign writes it), compact with cosign's key order.
pub fn payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{}}},"image":{{"docker-manifest-digest":{}}},"type":"{TYPE}"}},"optional":null}}"#,
        go_string(docker_reference),
        go_string(manifest_digest),
    )
    .into_bytes()
}

/// A JSON string as Go's `encoding/json` writes it: besides `"` and `\`, it escapes `<`, `>`,
/// `&`, U+2028 and U+2029, and control characters other than `\b \f \n \r \t` as `\u00xx`.
fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The manifest digest a simple-signing payload signs (`critical.image.docker-manifest-digest`),
/// once `critical.type` is a cosign image signature's. `Err` says what is wrong.
pub fn signed_digest(payload: &[u8]) -> Result<String, String> {
    let json: Value = serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let critical = json.get("critical").ok_or("the payload has no `critical` object")?;
    match critical.get("type") {
        Some(Value::String(t)) if t == TYPE => {}
        Some(other) => return Err(format!("the payload's critical.type is {other}, not \"{TYPE}\"")),
        None => return Err(format!("the payload has no critical.type (\"{TYPE}\")")),
    }
    let digest = critical
        .get("image")
        .and_then(|image| image.get("docker-manifest-digest"))
        .and_then(Value::as_str)
        .ok_or("the payload has no critical.image.docker-manifest-digest string")?;
    let digest: Digest = digest.parse().map_err(|e| format!("the payload's manifest digest is {e}"))?;
    Ok(digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:9494e567c7c44e8b9f8808c1658a47c9b7979ef3cceef10f48754fc2706802ba";

    /// A payload `cosign sign` wrote, as quoted in the tests of a project that reads them.
    const COSIGNS: &str = r#"{"critical":{"identity":{"docker-reference":"us-docker.pkg.dev/confidential-space-images-dev/cs-cosign-tests/base"},"image":{"docker-manifest-digest":"sha256:9494e567c7c44e8b9f8808c1658a47c9b7979ef3cceef10f48754fc2706802ba"},"type":"cosign container image signature"},"optional":null}"#;

    #[test]
    fn the_payload_is_cosigns_bytes() {
        let ours = payload("us-docker.pkg.dev/confidential-space-images-dev/cs-cosign-tests/base", DIGEST);
        assert_eq!(String::from_utf8(ours).unwrap(), COSIGNS);
    }

    #[test]
    fn the_signed_digest_is_read_back() {
        assert_eq!(signed_digest(COSIGNS.as_bytes()).unwrap(), DIGEST);
        assert_eq!(signed_digest(&payload("registry.example.com/api", DIGEST)).unwrap(), DIGEST);
        // Whitespace and an `optional` object, as `cosign sign -a` writes, change nothing.
        let pretty = serde_json::to_vec_pretty(&serde_json::json!({
            "critical": {"identity": {"docker-reference": "r"}, "image": {"docker-manifest-digest": DIGEST},
                         "type": TYPE},
            "optional": {"commit": "abc"}
        }))
        .unwrap();
        assert_eq!(signed_digest(&pretty).unwrap(), DIGEST);
    }

    #[test]
    fn other_documents_are_refused_with_the_reason() {
        let err = |s: &str| signed_digest(s.as_bytes()).unwrap_err();
        assert!(err("not json").starts_with("the payload is not JSON: "));
        assert_eq!(err("{}"), "the payload has no `critical` object");
        let other_type = COSIGNS.replace("cosign container image signature", "something else");
        assert_eq!(
            err(&other_type),
            "the payload's critical.type is \"something else\", not \"cosign container image signature\""
        );
        assert_eq!(
            err(r#"{"critical":{"image":{}}}"#),
            "the payload has no critical.type (\"cosign container image signature\")"
        );
        let no_digest = COSIGNS.replace("docker-manifest-digest", "digest");
        assert_eq!(err(&no_digest), "the payload has no critical.image.docker-manifest-digest string");
        let bad_digest = COSIGNS.replace(DIGEST, "sha256:abc");
        assert!(err(&bad_digest).starts_with("the payload's manifest digest is \"sha256:abc\", which is not"));
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        assert_eq!(go_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_string("<&>"), r#""\u003c\u0026\u003e""#);
        assert_eq!(go_string("\n\t\u{1}\u{1f}\u{2028}é"), "\"\\n\\t\\u0001\\u001f\\u2028é\"");
        let text = String::from_utf8(payload("a<b", DIGEST)).unwrap();
        assert!(text.contains(r#""docker-reference":"a\u003cb""#), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["critical"]["identity"]["docker-reference"], "a<b");
    }
}
