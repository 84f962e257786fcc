//! kiln's keys and signatures checked with a tool nobody here wrote (DESIGN.md, house rule 10):
//! the openssl CLI makes keys kiln must read and refuse, reads the keys kiln writes, and
//! verifies signatures both ways.

use super::keys::{KeyError, PrivateKey, PublicKey, generate};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `openssl ARGS` in `dir`; fails the test, saying so, when openssl is not installed.
fn run(dir: &Path, args: &[&str]) -> Output {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "these tests check kiln's keys with the openssl command, which could not be run ({e}); \
             install openssl (e.g. `apt-get install openssl`) and run them again"
        ),
    }
}

/// Runs `openssl ARGS` in `dir`, which must succeed; its standard output.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = run(dir, args);
    assert!(output.status.success(), "openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    output.stdout
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// A P-256 key made by openssl: k.pem (PKCS#8), sec1.pem (SEC1) and pub.pem (SPKI).
fn openssl_key() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem"]);
    openssl(d, &["ec", "-in", "k.pem", "-out", "sec1.pem"]);
    openssl(d, &["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
    dir
}

#[test]
fn an_openssl_key_is_read_in_pkcs8_and_sec1_form() {
    let dir = openssl_key();
    let d = dir.path();
    assert!(read(d, "k.pem").starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(read(d, "sec1.pem").starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let pkcs8 = PrivateKey::from_pem(&read(d, "k.pem")).unwrap();
    let sec1 = PrivateKey::from_pem(&read(d, "sec1.pem")).unwrap();
    let public = PublicKey::from_pem(&read(d, "pub.pem")).unwrap();
    assert_eq!(pkcs8.public(), public);
    assert_eq!(sec1.public(), public);
    assert_eq!(public.to_pem().unwrap(), read(d, "pub.pem"), "kiln writes the public key as openssl does");
    assert_eq!(pkcs8.sign(b"m"), sec1.sign(b"m"));

    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    openssl(d, &["ecparam", "-name", "prime256v1", "-genkey", "-out", "ecparam.pem"]);
    assert!(read(d, "ecparam.pem").starts_with("-----BEGIN EC PARAMETERS-----"));
    PrivateKey::from_pem(&read(d, "ecparam.pem")).unwrap();
}

#[test]
fn the_key_id_is_the_sha256_of_openssls_der_public_key() {
    let dir = openssl_key();
    let d = dir.path();
    openssl(d, &["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der"]);
    let out = openssl(d, &["dgst", "-sha256", "-r", "pub.der"]);
    let hex = String::from_utf8(out).unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(PublicKey::from_pem(&read(d, "pub.pem")).unwrap().key_id(), hex);
}

#[test]
fn kilns_signatures_verify_with_openssl() {
    let dir = openssl_key();
    let d = dir.path();
    let key = PrivateKey::from_pem(&read(d, "k.pem")).unwrap();
    std::fs::write(d.join("msg"), b"the manifest kiln signs").unwrap();
    std::fs::write(d.join("sig.der"), key.sign(b"the manifest kiln signs")).unwrap();
    let out = openssl(d, &["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "msg"]);
    assert_eq!(String::from_utf8(out).unwrap().trim(), "Verified OK");

    std::fs::write(d.join("msg"), b"the manifest kiln signed").unwrap();
    let refused = run(d, &["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "msg"]);
    assert!(!refused.status.success(), "openssl verified a signature over another message");
}

#[test]
fn openssls_signatures_verify_with_kiln() {
    let dir = openssl_key();
    let d = dir.path();
    let public = PublicKey::from_pem(&read(d, "pub.pem")).unwrap();
    // openssl's signatures are random: several, so that some have a high s.
    for i in 0..8 {
        let message = format!("message {i}");
        std::fs::write(d.join("msg"), &message).unwrap();
        openssl(d, &["dgst", "-sha256", "-sign", "k.pem", "-out", "sig.der", "msg"]);
        let signature = std::fs::read(d.join("sig.der")).unwrap();
        assert!(public.verify(message.as_bytes(), &signature), "openssl's signature {i} does not verify");
        assert!(!public.verify(format!("message {}", i + 1).as_bytes(), &signature));
        let mut tampered = signature.clone();
        tampered[8] ^= 0x40;
        assert!(!public.verify(message.as_bytes(), &tampered));
    }
}

#[test]
fn kilns_keys_are_read_by_openssl_and_written_as_it_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (private, public) = generate().unwrap();
    std::fs::write(d.join("priv.pem"), &private).unwrap();
    std::fs::write(d.join("pub.pem"), &public).unwrap();
    openssl(d, &["pkey", "-in", "priv.pem", "-noout"]);
    openssl(d, &["pkey", "-pubin", "-in", "pub.pem", "-noout"]);
    openssl(d, &["ec", "-in", "priv.pem", "-check", "-noout"]);
    // openssl writes back the same bytes: the forms are openssl's own.
    assert_eq!(String::from_utf8(openssl(d, &["pkey", "-in", "priv.pem"])).unwrap(), private);
    assert_eq!(String::from_utf8(openssl(d, &["pkey", "-in", "priv.pem", "-pubout"])).unwrap(), public);
    assert_eq!(String::from_utf8(openssl(d, &["pkey", "-pubin", "-in", "pub.pem"])).unwrap(), public);
    let text = String::from_utf8(openssl(d, &["pkey", "-in", "priv.pem", "-noout", "-text"])).unwrap();
    assert!(text.contains("NIST CURVE: P-256"), "{text}");

    let key = PrivateKey::from_pem(&private).unwrap();
    std::fs::write(d.join("msg"), b"hello").unwrap();
    std::fs::write(d.join("sig.der"), key.sign(b"hello")).unwrap();
    openssl(d, &["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "msg"]);
}

/// Refuses `name` as a private key, and the message and help quote none of its PEM.
fn refused(d: &Path, name: &str) -> KeyError {
    let text = read(d, name);
    let err = PrivateKey::from_pem(&text).unwrap_err();
    let shown = format!("{err} {}", miette::Diagnostic::help(&err).unwrap());
    for line in text.lines().filter(|l| !l.starts_with("-----") && l.len() > 8) {
        assert!(!shown.contains(line), "the refusal of {name} quotes its key: {shown}");
    }
    err
}

#[test]
fn other_keys_are_refused_saying_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa.pem"]);
    openssl(d, &["rsa", "-in", "rsa.pem", "-traditional", "-out", "rsa-traditional.pem"]);
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed25519.pem"]);
    openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.pem"]);
    openssl(d, &["ec", "-in", "p384.pem", "-out", "p384-sec1.pem"]);
    openssl(d, &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa-pub.pem"]);
    openssl(d, &["pkey", "-in", "p384.pem", "-pubout", "-out", "p384-pub.pem"]);

    let cases = [
        ("rsa.pem", "the private key is an RSA key, not an ECDSA P-256 key"),
        ("rsa-traditional.pem", "the private key is an RSA key, not an ECDSA P-256 key"),
        ("ed25519.pem", "the private key is an Ed25519 key, not an ECDSA P-256 key"),
        ("p384.pem", "the private key is an EC key on the curve P-384 (secp384r1), not an ECDSA P-256 key"),
        ("p384-sec1.pem", "the private key is an EC key on the curve P-384 (secp384r1), not an ECDSA P-256 key"),
    ];
    for (name, message) in cases {
        let err = refused(d, name);
        assert_eq!(err.to_string(), message, "{name}");
        assert!(miette::Diagnostic::help(&err).unwrap().to_string().contains("ec_paramgen_curve:P-256"));
    }
    let err = PublicKey::from_pem(&read(d, "rsa-pub.pem")).unwrap_err();
    assert_eq!(err.to_string(), "the public key is an RSA key, not an ECDSA P-256 key");
    let err = PublicKey::from_pem(&read(d, "p384-pub.pem")).unwrap_err();
    assert_eq!(err.to_string(), "the public key is an EC key on the curve P-384 (secp384r1), not an ECDSA P-256 key");
}

#[test]
fn encrypted_keys_are_refused() {
    let dir = openssl_key();
    let d = dir.path();
    openssl(d, &["pkey", "-in", "k.pem", "-aes256", "-passout", "pass:secret", "-out", "pkcs8.pem"]);
    openssl(d, &["ec", "-in", "k.pem", "-aes256", "-passout", "pass:secret", "-out", "legacy.pem"]);
    assert!(read(d, "pkcs8.pem").starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(read(d, "legacy.pem").contains("Proc-Type: 4,ENCRYPTED"));
    let err = refused(d, "pkcs8.pem");
    assert_eq!(
        err.to_string(),
        "the private key is encrypted (ENCRYPTED PRIVATE KEY); kiln reads unencrypted keys only"
    );
    let err = refused(d, "legacy.pem");
    assert_eq!(err.to_string(), "the private key is encrypted (EC PRIVATE KEY); kiln reads unencrypted keys only");
    assert!(miette::Diagnostic::help(&err).unwrap().to_string().contains("openssl pkey -in KEY.pem -out PLAIN.pem"));
}
