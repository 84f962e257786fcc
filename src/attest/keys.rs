//! ECDSA P-256 keys: the one kind of key kiln signs with, because cosign, DSSE verifiers and
//! registries all accept it and openssl makes it in one command. Keys are read and written as
//! the PEM openssl writes (PKCS#8 or SEC1 private keys, SPKI public keys); signatures are
//! ASN.1 DER over SHA-256, deterministic (RFC 6979), as `openssl dgst -sha256 -sign` reads them.
//!
//! A key that cannot be used is refused with what it was found to be, never with its bytes.
//!
//! The DER and PEM themselves are p256's (its `pkcs8`, `spki` and `der` re-exports), which
//! are the forms openssl writes; this module adds what p256 does not say: which block of a
//! PEM file is the key, and what a refused key is instead (`pem.rs`).

use super::pem::{self, Block};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::elliptic_curve::rand_core::OsRng;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::der::Document;
use p256::pkcs8::der::pem::decode_vec;
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding, PrivateKeyInfo};
use std::fmt;

/// A new key pair: (private key, public key) as PEM, in the forms
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` and
/// `openssl pkey -pubout` write (PKCS#8 `PRIVATE KEY`, SPKI `PUBLIC KEY`).
pub fn generate() -> Result<(String, String), KeyError> {
    let key = SigningKey::random(&mut OsRng);
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| unwritable(Role::Private, e))?;
    let public = PublicKey::new(*key.verifying_key())?.to_pem()?;
    Ok((private.as_str().to_owned(), public))
}

/// Which key a [`KeyError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Private,
    Public,
}

impl Role {
    /// What kiln reads for this role, and how to make it.
    fn help(self) -> &'static str {
        match self {
            Role::Private => {
                "kiln signs with an unencrypted ECDSA P-256 private key in PEM, as \
                 `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it"
            }
            Role::Public => {
                "kiln verifies with an ECDSA P-256 public key in PEM (PUBLIC KEY), as \
                 `openssl pkey -in PRIVATE.pem -pubout` writes it"
            }
        }
    }

    /// The PEM labels kiln reads for this role.
    fn labels(self) -> &'static str {
        match self {
            Role::Private => "PRIVATE KEY or EC PRIVATE KEY",
            Role::Public => "PUBLIC KEY",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Private => "private key",
            Role::Public => "public key",
        })
    }
}

/// A key kiln cannot use. Messages say what was found (a PEM label, an algorithm, a curve)
/// and never quote the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error("the {role} is not PEM: it has no `-----BEGIN …-----` line")]
    #[diagnostic(code(kiln::attest::key), help("{}", role.help()))]
    NotPem { role: Role },
    #[error("the {role}'s PEM block {label} has no `-----END {label}-----` line")]
    #[diagnostic(code(kiln::attest::key), help("{}", role.help()))]
    Unterminated { role: Role, label: String },
    #[error("the {role} is encrypted ({label}); kiln reads unencrypted keys only")]
    #[diagnostic(
        code(kiln::attest::key),
        help(
            "write it out decrypted to a file only you can read (`openssl pkey -in KEY.pem -out PLAIN.pem`), \
             or make a new one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
        )
    )]
    Encrypted { role: Role, label: String },
    #[error("the {role} is {found}, not an ECDSA P-256 key")]
    #[diagnostic(code(kiln::attest::key), help("{}", role.help()))]
    Algorithm { role: Role, found: String },
    #[error("the {role} is a PEM {label} block, where kiln reads {}", role.labels())]
    #[diagnostic(code(kiln::attest::key), help("{}", role.help()))]
    Kind { role: Role, label: String },
    #[error("the {role}'s {label} block is malformed: {reason}")]
    #[diagnostic(code(kiln::attest::key), help("{}", role.help()))]
    Malformed { role: Role, label: String, reason: String },
    /// p256 could not encode a key: a fault in kiln or p256, not in any file.
    #[error("kiln could not write the {role} as DER or PEM: {reason}")]
    #[diagnostic(code(kiln::attest::key), help("{}", role.help()))]
    Unwritable { role: Role, reason: String },
}

/// The block of a PEM text that holds the key: the first one, past the `EC PARAMETERS`
/// block `openssl ecparam -genkey` writes before the key.
fn key_block(role: Role, text: &str) -> Result<Block<'_>, KeyError> {
    let found =
        pem::blocks(text).map_err(|label| KeyError::Unterminated { role, label: crate::diag::shown(&label) })?;
    let Some(block) = found.iter().copied().find(|b| b.label != "EC PARAMETERS") else {
        return Err(match found.first() {
            Some(only) => KeyError::Kind { role, label: crate::diag::shown(only.label) },
            None => KeyError::NotPem { role },
        });
    };
    if block.label.contains("ENCRYPTED") || block.has_legacy_encryption() {
        return Err(KeyError::Encrypted { role, label: crate::diag::shown(block.label) });
    }
    Ok(block)
}

/// The DER bytes of a block, zeroed when dropped (they may hold a private key).
fn der_of(role: Role, block: Block<'_>) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    match decode_vec(block.text.as_bytes()) {
        Ok((_, der)) => Ok(Zeroizing::new(der)),
        Err(e) => Err(malformed(role, block.label, e)),
    }
}

fn malformed(role: Role, label: &str, reason: impl fmt::Display) -> KeyError {
    KeyError::Malformed { role, label: label.to_string(), reason: reason.to_string() }
}

fn unwritable(role: Role, reason: impl fmt::Display) -> KeyError {
    KeyError::Unwritable { role, reason: reason.to_string() }
}

/// A private key to sign with. Its `Debug` shows the key id of its public key, never the key.
pub struct PrivateKey {
    key: SigningKey,
    public: PublicKey,
}

impl PrivateKey {
    /// Reads an unencrypted P-256 private key: PKCS#8 (`PRIVATE KEY`, as `openssl genpkey`
    /// writes) or SEC1 (`EC PRIVATE KEY`, as `openssl ecparam -genkey` and `openssl ec` write).
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        let role = Role::Private;
        let block = key_block(role, text)?;
        match block.label {
            "PRIVATE KEY" | "EC PRIVATE KEY" => {}
            "RSA PRIVATE KEY" => return Err(KeyError::Algorithm { role, found: "an RSA key".into() }),
            "DSA PRIVATE KEY" => return Err(KeyError::Algorithm { role, found: "a DSA key".into() }),
            other => return Err(KeyError::Kind { role, label: crate::diag::shown(other) }),
        }
        let der = der_of(role, block)?;
        let key = match block.label {
            "PRIVATE KEY" => {
                let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| malformed(role, block.label, e))?;
                let curve = info.algorithm.parameters_oid().ok();
                pem::check_p256(info.algorithm.oid, curve).map_err(|found| KeyError::Algorithm { role, found })?;
                SigningKey::try_from(info).map_err(|e| malformed(role, block.label, e))?
            }
            _ => {
                if let Some(curve) = pem::sec1_curve(&der) {
                    pem::check_p256(pem::EC_PUBLIC_KEY, Some(curve))
                        .map_err(|found| KeyError::Algorithm { role, found })?;
                }
                let secret = p256::SecretKey::from_sec1_der(&der).map_err(|e| malformed(role, block.label, e))?;
                SigningKey::from(secret)
            }
        };
        let public = PublicKey::new(*key.verifying_key())?;
        Ok(PrivateKey { key, public })
    }

    /// The ASN.1 DER ECDSA signature over the SHA-256 of `message`; the same message and key
    /// always give the same signature (RFC 6979).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: DerSignature = self.key.sign(message);
        signature.as_bytes().to_vec()
    }

    /// The public half, to verify with and to name the key by.
    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {})", self.public().key_id())
    }
}

/// A public key to verify with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// The key's SubjectPublicKeyInfo DER, encoded once when the key is made so that naming
    /// it ([`PublicKey::key_id`]) cannot fail.
    spki: Document,
}

impl PublicKey {
    fn new(key: VerifyingKey) -> Result<PublicKey, KeyError> {
        let spki = key.to_public_key_der().map_err(|e| unwritable(Role::Public, e))?;
        Ok(PublicKey { key, spki })
    }

    /// Reads a P-256 public key in SPKI PEM (`PUBLIC KEY`, as `openssl pkey -pubout` writes).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let role = Role::Public;
        let block = key_block(role, text)?;
        if block.label != "PUBLIC KEY" {
            return Err(KeyError::Kind { role, label: crate::diag::shown(block.label) });
        }
        let der = der_of(role, block)?;
        let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| malformed(role, block.label, e))?;
        let curve = spki.algorithm.parameters_oid().ok();
        pem::check_p256(spki.algorithm.oid, curve).map_err(|found| KeyError::Algorithm { role, found })?;
        let key = VerifyingKey::try_from(spki).map_err(|e| malformed(role, block.label, e))?;
        PublicKey::new(key)
    }

    /// SPKI PEM (`PUBLIC KEY`), byte for byte as `openssl pkey -pubout` writes it.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|e| unwritable(Role::Public, e))
    }

    /// The SubjectPublicKeyInfo DER bytes, with the point uncompressed.
    pub fn spki_der(&self) -> &[u8] {
        self.spki.as_bytes()
    }

    /// Whether `der_signature` is this key's ASN.1 DER ECDSA signature over the SHA-256 of
    /// `message`. Bytes that are not such a signature are simply `false`.
    pub fn verify(&self, message: &[u8], der_signature: &[u8]) -> bool {
        DerSignature::from_bytes(der_signature).is_ok_and(|s| self.key.verify(message, &s).is_ok())
    }

    /// The key's name: the lowercase hex sha256 of its SPKI DER bytes.
    pub fn key_id(&self) -> String {
        crate::oci::digest::sha256_hex(self.spki_der())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_signs_and_verifies() {
        let (private, public) = generate().unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{public}");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{public}");
        let key = PrivateKey::from_pem(&private).unwrap();
        let public = PublicKey::from_pem(&public).unwrap();
        assert_eq!(key.public(), public);
        let signature = key.sign(b"message");
        assert_eq!(signature, key.sign(b"message"), "RFC 6979 signatures are deterministic");
        assert!(public.verify(b"message", &signature));
        assert!(!public.verify(b"messagf", &signature));
        let mut tampered = signature.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(!public.verify(b"message", &tampered));
        assert!(!public.verify(b"message", &[]));
        assert!(!public.verify(b"message", &[0x30; 64]));
        let other = PrivateKey::from_pem(&generate().unwrap().0).unwrap();
        assert!(!other.public().verify(b"message", &signature));
        assert_ne!(other.public().key_id(), public.key_id());
    }

    #[test]
    fn the_written_forms_are_p256s_own_encodings() {
        let (private, public) = generate().unwrap();
        let key = PrivateKey::from_pem(&private).unwrap();
        let theirs = key.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(private, *theirs);
        let theirs = key.key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        assert_eq!(public, theirs);
        assert_eq!(key.public().to_pem().unwrap(), public);
    }

    #[test]
    fn the_key_id_is_the_sha256_of_the_spki_der() {
        let public = PublicKey::from_pem(&generate().unwrap().1).unwrap();
        let der = public.key.to_public_key_der().unwrap();
        assert_eq!(public.spki_der(), der.as_bytes());
        assert_eq!(public.key_id(), crate::oci::digest::sha256_hex(der.as_bytes()));
        assert_eq!(public.key_id().len(), 64);
        assert!(format!("{public:?}").contains(&public.key_id()));
    }

    #[test]
    fn what_is_not_a_usable_key_is_named() {
        let (private, public) = generate().unwrap();
        let params = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
        let err = PrivateKey::from_pem(params).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the private key is a PEM EC PARAMETERS block, where kiln reads PRIVATE KEY or EC PRIVATE KEY"
        );
        let err = PrivateKey::from_pem("hello").unwrap_err();
        assert_eq!(err, KeyError::NotPem { role: Role::Private });
        assert_eq!(err.to_string(), "the private key is not PEM: it has no `-----BEGIN …-----` line");
        let err = PrivateKey::from_pem(&public).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the private key is a PEM PUBLIC KEY block, where kiln reads PRIVATE KEY or EC PRIVATE KEY"
        );
        let err = PublicKey::from_pem(&private).unwrap_err();
        assert_eq!(err.to_string(), "the public key is a PEM PRIVATE KEY block, where kiln reads PUBLIC KEY");
        let cut = &private[..private.len() - 10];
        assert!(matches!(PrivateKey::from_pem(cut).unwrap_err(), KeyError::Unterminated { .. }));
        let garbled = private.replacen("MIGHAgEAMBMG", "MIGHAgEAMBMH", 1);
        let err = PrivateKey::from_pem(&garbled).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n\
                      -----END EC PRIVATE KEY-----\n";
        let err = PrivateKey::from_pem(legacy).unwrap_err();
        assert_eq!(err.to_string(), "the private key is encrypted (EC PRIVATE KEY); kiln reads unencrypted keys only");
    }

    #[test]
    fn a_refusal_renders_with_its_code_and_help() {
        use miette::Diagnostic as _;
        let err = PublicKey::from_pem("nothing").unwrap_err();
        assert_eq!(err.code().unwrap().to_string(), "kiln::attest::key");
        assert!(err.help().unwrap().to_string().contains("openssl pkey -in PRIVATE.pem -pubout"));
        let err = PrivateKey::from_pem("nothing").unwrap_err();
        assert!(err.help().unwrap().to_string().contains("ec_paramgen_curve:P-256"));
        // p256 never fails to encode a P-256 key, so this one is only made by hand.
        let err = KeyError::Unwritable { role: Role::Private, reason: "ASN.1 DER message is too long".into() };
        assert_eq!(
            err.to_string(),
            "kiln could not write the private key as DER or PEM: ASN.1 DER message is too long"
        );
        assert_eq!(err.code().unwrap().to_string(), "kiln::attest::key");
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let (private, _) = generate().unwrap();
        let key = PrivateKey::from_pem(&private).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, format!("PrivateKey(public {})", key.public().key_id()));
    }
}
