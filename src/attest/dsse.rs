//! DSSE v1 envelopes (<https://github.com/secure-systems-lab/dsse>), the signed wrapper of
//! in-toto attestations (SBOMs, provenance) that cosign and the in-toto tools verify.
//!
//! The signature covers the pre-authentication encoding ([`pae`]) of the payload type and the
//! payload, never the JSON of the envelope, so the envelope can be re-serialised freely.

use super::keys::{PrivateKey, PublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use serde::{Deserialize, Serialize};

/// The payload type of an in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A DSSE envelope, with the field names and order of the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The payload in standard base64 with padding.
    pub payload: String,
    pub signatures: Vec<Signature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's key id (see [`PublicKey::key_id`]); a hint only, which the spec lets a
    /// signer leave out.
    #[serde(default)]
    pub keyid: String,
    /// The ASN.1 DER ECDSA signature over the PAE, in standard base64.
    pub sig: String,
}

/// The pre-authentication encoding: `DSSEv1 LEN(type) type LEN(body) body`, separated by
/// single spaces, lengths in ASCII decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An envelope of `payload` signed by `key`, named by its public key's id.
pub fn sign(payload_type: &str, payload: &[u8], key: &PrivateKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: STANDARD.encode(payload),
        signatures: vec![Signature { keyid: key.public().key_id(), sig: STANDARD.encode(signature) }],
    }
}

/// Standard or URL-safe base64, padded or not: the spec has verifiers accept either.
fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD_PAD_INDIFFERENT.decode(text).or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(text)).ok()
}

/// The payload of an envelope, once a signature by `key` verifies over it: one whose keyid is
/// the key's id, or empty. The caller checks the payload type. `Err` says why not.
pub fn verify(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, String> {
    let payload = decode(&envelope.payload).ok_or("the envelope's payload is not base64")?;
    let id = key.key_id();
    let mine: Vec<&Signature> = envelope.signatures.iter().filter(|s| s.keyid.is_empty() || s.keyid == id).collect();
    if mine.is_empty() {
        return Err(if envelope.signatures.is_empty() {
            "the envelope has no signatures".to_string()
        } else {
            let ids: Vec<&str> = envelope.signatures.iter().map(|s| s.keyid.as_str()).collect();
            format!("the envelope has no signature by the key {id}; it is signed by {}", ids.join(", "))
        });
    }
    let message = pae(&envelope.payload_type, &payload);
    if mine.iter().any(|s| decode(&s.sig).is_some_and(|sig| key.verify(&message, &sig))) {
        return Ok(payload);
    }
    Err(format!(
        "the envelope's signature by the key {id} does not verify: its payload, payload type or signature \
         was changed after signing, or another key signed it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::keys::generate;

    #[test]
    fn pae_is_the_specs_example() {
        let expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world";
        assert_eq!(pae("http://example.com/HelloWorld", b"hello world"), expected);
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        // Lengths count bytes, not characters.
        assert_eq!(pae("é", "ü".as_bytes()), "DSSEv1 2 é 2 ü".as_bytes());
    }

    #[test]
    fn a_signed_envelope_verifies_and_gives_back_its_payload() {
        let key = PrivateKey::from_pem(&generate().unwrap().0).unwrap();
        let envelope = sign(IN_TOTO, b"{\"_type\":\"statement\"}", &key);
        assert_eq!(envelope.payload, "eyJfdHlwZSI6InN0YXRlbWVudCJ9");
        assert_eq!(envelope.signatures[0].keyid, key.public().key_id());
        assert_eq!(verify(&envelope, &key.public()).unwrap(), b"{\"_type\":\"statement\"}");
        let json = serde_json::to_string(&envelope).unwrap();
        assert!(json.starts_with(r#"{"payloadType":"application/vnd.in-toto+json","payload":"eyJ"#), "{json}");
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn a_changed_envelope_does_not_verify() {
        let key = PrivateKey::from_pem(&generate().unwrap().0).unwrap();
        let public = key.public();
        let envelope = sign(IN_TOTO, b"payload", &key);
        let does_not_verify = |e: &Envelope| verify(e, &public).unwrap_err().contains("does not verify");

        let mut changed = envelope.clone();
        changed.payload = STANDARD.encode(b"paylaod");
        assert!(does_not_verify(&changed));
        let mut changed = envelope.clone();
        changed.payload_type = "application/json".into();
        assert!(does_not_verify(&changed));
        let mut changed = envelope.clone();
        changed.signatures[0].sig = STANDARD.encode(key.sign(b"payload"));
        assert!(does_not_verify(&changed), "a signature over the payload alone, not the PAE");
        let mut changed = envelope.clone();
        changed.signatures[0].sig = "not base64!".into();
        assert!(does_not_verify(&changed));

        let mut changed = envelope.clone();
        changed.payload = "not base64!".into();
        assert_eq!(verify(&changed, &public).unwrap_err(), "the envelope's payload is not base64");
        let mut changed = envelope.clone();
        changed.signatures.clear();
        assert_eq!(verify(&changed, &public).unwrap_err(), "the envelope has no signatures");

        let other = PrivateKey::from_pem(&generate().unwrap().0).unwrap().public();
        let err = verify(&envelope, &other).unwrap_err();
        assert!(err.starts_with(&format!("the envelope has no signature by the key {}", other.key_id())), "{err}");
        assert!(err.ends_with(&public.key_id()), "{err}");
    }

    #[test]
    fn keyids_only_narrow_the_signatures_tried() {
        let key = PrivateKey::from_pem(&generate().unwrap().0).unwrap();
        let other = PrivateKey::from_pem(&generate().unwrap().0).unwrap();
        let mut envelope = sign(IN_TOTO, b"payload", &key);
        let by_other = sign(IN_TOTO, b"payload", &other).signatures.remove(0);
        envelope.signatures.insert(0, by_other);
        assert_eq!(verify(&envelope, &key.public()).unwrap(), b"payload");
        assert_eq!(verify(&envelope, &other.public()).unwrap(), b"payload");
        envelope.signatures[1].keyid.clear();
        assert_eq!(verify(&envelope, &key.public()).unwrap(), b"payload", "an empty keyid is tried");
        envelope.signatures[1].keyid = other.public().key_id();
        assert!(verify(&envelope, &key.public()).is_err(), "a keyid naming another key is not");
    }

    /// The envelope of the spec's test vector (protocol.md): its key as its X, Y and d, its
    /// signature as raw r || s, and no keyid.
    #[test]
    fn the_specs_test_vector_is_reproduced_and_verifies() {
        use p256::elliptic_curve::bigint::{Encoding as _, U256};
        use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        let decimal = |s: &str| {
            let mut n = U256::ZERO;
            for c in s.bytes() {
                n = n.wrapping_mul(&U256::from_u8(10)).wrapping_add(&U256::from_u8(c - b'0'));
            }
            n.to_be_bytes()
        };
        let d = decimal("97358161215184420915383655311931858321456579547487070936769975997791359926199");
        let x = decimal("46950820868899156662930047687818585632848591499744589407958293238635476079160");
        let y = decimal("5640078356564379163099075877009565129882514886557779369047442380624545832820");
        let point = p256::PublicKey::from_sec1_bytes(&[&[4u8][..], &x, &y].concat()).unwrap();
        let private = p256::SecretKey::from_slice(&d).unwrap().to_pkcs8_pem(LineEnding::LF).unwrap();
        let key = PrivateKey::from_pem(&private).unwrap();
        let public = PublicKey::from_pem(&point.to_public_key_pem(LineEnding::LF).unwrap()).unwrap();
        assert_eq!(key.public(), public, "d gives the point X, Y");

        let json = r#"{"payload": "aGVsbG8gd29ybGQ=",
            "payloadType": "http://example.com/HelloWorld",
            "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let mut theirs: Envelope = serde_json::from_str(json).unwrap();
        let raw = STANDARD.decode(&theirs.signatures[0].sig).unwrap();
        let der = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der();
        theirs.signatures[0].sig = STANDARD.encode(der.as_bytes());
        assert_eq!(verify(&theirs, &public).unwrap(), b"hello world");

        let mine = sign("http://example.com/HelloWorld", b"hello world", &key);
        assert_eq!(mine.payload, theirs.payload);
        assert_eq!(mine.signatures[0].sig, theirs.signatures[0].sig, "RFC 6979 gives the spec's signature");
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_read() {
        let key = PrivateKey::from_pem(&generate().unwrap().0).unwrap();
        let payload = [0xfb, 0xff, 0xfe, 0x01];
        let mut envelope = sign("t", &payload, &key);
        envelope.payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
        assert_eq!(envelope.payload, "-__-AQ");
        assert_eq!(verify(&envelope, &key.public()).unwrap(), payload);
    }
}
