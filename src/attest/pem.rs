//! What p256 does not tell about a PEM key file, for refusals that name what was found:
//! where its blocks are and what they are labelled, whether openssl encrypted it, and which
//! algorithm and curve a key of another kind is.
//!
//! p256's PEM reader (`pem-rfc7468`) takes one block and no text around it, so the blocks are
//! found here first: openssl writes an `EC PARAMETERS` block before an `EC PRIVATE KEY`, and
//! its legacy encryption headers before the base64. Decoding the blocks and writing keys are
//! p256's own (`keys.rs`).

use p256::NistP256;
use p256::elliptic_curve::ALGORITHM_OID;
use p256::pkcs8::der::asn1::{ContextSpecific, OctetStringRef};
use p256::pkcs8::der::{Decode as _, Reader as _, SliceReader, TagNumber};
use p256::pkcs8::{AssociatedOid as _, ObjectIdentifier};

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block of a PEM file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block<'a> {
    pub(crate) label: &'a str,
    /// The block from its BEGIN line to the end of its END line.
    pub(crate) text: &'a str,
}

impl Block<'_> {
    /// Whether the block carries the headers of openssl's legacy encryption
    /// (`Proc-Type: 4,ENCRYPTED`, as `openssl ec -aes256` writes).
    pub(crate) fn has_legacy_encryption(&self) -> bool {
        self.text.lines().any(|l| l.starts_with("Proc-Type:") && l.contains("ENCRYPTED"))
    }
}

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";

/// The PEM blocks of a text, in order; text between blocks is ignored, as openssl ignores it.
/// `Err` holds the label of a block without its END line.
pub(crate) fn blocks(text: &str) -> Result<Vec<Block<'_>>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let from = &rest[start..];
        let after = &from[BEGIN.len()..];
        let label = match after.find(DASHES) {
            Some(end) if !after[..end].contains('\n') => &after[..end],
            _ => return Err(after.lines().next().unwrap_or_default().to_string()),
        };
        let end_line = format!("-----END {label}-----");
        let Some(end) = from.find(&end_line) else { return Err(label.to_string()) };
        let len = end + end_line.len();
        found.push(Block { label, text: &from[..len] });
        rest = &from[len..];
    }
    Ok(found)
}

/// id-ecPublicKey, the algorithm of every EC key whatever its curve.
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier = ALGORITHM_OID;

/// What a key of this algorithm (and, for EC keys, curve) is, in words; `Ok` for P-256.
pub(crate) fn check_p256(algorithm: ObjectIdentifier, curve: Option<ObjectIdentifier>) -> Result<(), String> {
    if algorithm == EC_PUBLIC_KEY {
        return match curve {
            Some(curve) if curve == NistP256::OID => Ok(()),
            Some(curve) => Err(format!("an EC key on the curve {}", curve_name(&curve.to_string()))),
            None => Err("an EC key with explicit curve parameters, not a named curve".to_string()),
        };
    }
    let found = match algorithm.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "an RSA key".to_string(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS key".to_string(),
        "1.2.840.10040.4.1" => "a DSA key".to_string(),
        "1.2.840.113549.1.3.1" | "1.2.840.10046.2.1" => "a Diffie-Hellman key".to_string(),
        "1.3.101.110" => "an X25519 key".to_string(),
        "1.3.101.111" => "an X448 key".to_string(),
        "1.3.101.112" => "an Ed25519 key".to_string(),
        "1.3.101.113" => "an Ed448 key".to_string(),
        other => format!("a key of the algorithm {other}"),
    };
    Err(found)
}

fn curve_name(oid: &str) -> String {
    let name = match oid {
        "1.3.132.0.34" => "P-384 (secp384r1)",
        "1.3.132.0.35" => "P-521 (secp521r1)",
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)",
        "1.3.132.0.33" => "P-224 (secp224r1)",
        "1.3.132.0.10" => "secp256k1",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.2.156.10197.1.301" => "SM2",
        other => return other.to_string(),
    };
    name.to_string()
}

/// The named curve of a SEC1 ECPrivateKey (`EC PRIVATE KEY`), read without the key itself;
/// `None` when it names none or is not that structure. (The `sec1` crate's `EcPrivateKey`
/// would read it, but p256 does not re-export it, and p256's own SEC1 reader only says the
/// curve is wrong, not which it is.)
pub(crate) fn sec1_curve(der: &[u8]) -> Option<ObjectIdentifier> {
    let mut reader = SliceReader::new(der).ok()?;
    let curve = reader.sequence(|r| {
        let _version = u8::decode(r)?;
        let _scalar = OctetStringRef::decode(r)?;
        let curve = ContextSpecific::<ObjectIdentifier>::decode_explicit(r, TagNumber::N0)?;
        r.read_slice(r.remaining_len())?;
        Ok(curve.map(|c| c.value))
    });
    curve.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_between_other_text() {
        let text = "junk\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\ntrailer";
        let found = blocks(text).unwrap();
        assert_eq!(found.iter().map(|b| b.label).collect::<Vec<_>>(), ["EC PARAMETERS", "EC PRIVATE KEY"]);
        assert_eq!(found[1].text, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----");
        assert_eq!(blocks("no pem here").unwrap(), []);
        assert_eq!(blocks("-----BEGIN PUBLIC KEY-----\nAAAA\n").unwrap_err(), "PUBLIC KEY");
        assert_eq!(blocks("-----BEGIN PUBLIC KEY\nAAAA\n").unwrap_err(), "PUBLIC KEY");
    }

    #[test]
    fn algorithms_are_named() {
        let oid = |s: &str| ObjectIdentifier::new_unwrap(s);
        assert_eq!(check_p256(EC_PUBLIC_KEY, Some(NistP256::OID)), Ok(()));
        assert_eq!(check_p256(EC_PUBLIC_KEY, Some(oid("1.2.840.10045.3.1.7"))), Ok(()));
        assert_eq!(
            check_p256(EC_PUBLIC_KEY, None).unwrap_err(),
            "an EC key with explicit curve parameters, not a named curve"
        );
        assert_eq!(
            check_p256(EC_PUBLIC_KEY, Some(oid("1.3.132.0.34"))).unwrap_err(),
            "an EC key on the curve P-384 (secp384r1)"
        );
        assert_eq!(check_p256(oid("1.2.840.113549.1.1.1"), None).unwrap_err(), "an RSA key");
        assert_eq!(check_p256(oid("1.2.3.4"), None).unwrap_err(), "a key of the algorithm 1.2.3.4");
    }
}
