//! Digests and sha256 helpers: the [`Digest`] type every layout, base and plan digest is
//! parsed into once, where it is read, hashing byte slices and streams, and writers and
//! readers that hash what passes through.
//!
//! A digest read from a file is only ever used through [`Digest`]: nothing slices digest
//! strings or joins them into paths, so a malformed one (`x:abc`, uppercase hex, the wrong
//! length) is refused where it is read, with the reason, instead of being cut or followed.
//! Shared vocabulary: this module depends on no other kiln module.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::str::FromStr;

/// The hash algorithms of the digests kiln reads and writes: sha256, as OCI layouts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha256,
}

impl Algorithm {
    /// The name a digest starts with, and the directory under `blobs/` its blobs are in.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A content digest: `sha256:` and 64 lowercase hex digits, the only form kiln accepts.
/// Displayed, serialised and deserialised as that string, so JSON holding one is unchanged;
/// ordered as that string is.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    /// 64 lowercase hex digits.
    hex: String,
}

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Why {
    #[error("it has no algorithm before a `:`")]
    NoAlgorithm,
    #[error("kiln reads sha256 digests only, not {0}")]
    Algorithm(String),
    #[error("its hex digits must be lowercase")]
    Uppercase,
    #[error("{0:?} is not a hex digit")]
    NotHex(char),
    #[error("it has {0} hex digits, not 64")]
    Length(usize),
}

/// A string refused as a digest: the string (quoted, cut after 80 characters) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{shown}, which is not sha256: and 64 lowercase hex digits ({why})")]
pub struct DigestError {
    shown: String,
    why: Why,
}

impl DigestError {
    /// Why the string is not a digest.
    pub fn why(&self) -> &Why {
        &self.why
    }
}

/// A string read from a file, fit for a message: quoted, escaped, cut after 80 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Checks 64 lowercase hex digits.
fn check_hex(hex: &str) -> Result<(), Why> {
    if let Some(c) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(if c.is_ascii_hexdigit() { Why::Uppercase } else { Why::NotHex(c) });
    }
    match hex.len() {
        64 => Ok(()),
        n => Err(Why::Length(n)),
    }
}

impl Digest {
    /// The sha256 digest of some bytes.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }

    /// The digest of a sha256 hash just computed.
    pub fn from_sha256(hash: [u8; 32]) -> Digest {
        Digest { algorithm: Algorithm::Sha256, hex: hex(&hash) }
    }

    /// A sha256 digest from its hex digits alone, as a blob's file name under
    /// `blobs/sha256/` holds them.
    pub fn from_sha256_hex(hex: &str) -> Result<Digest, DigestError> {
        check_hex(hex).map_err(|why| DigestError { shown: shown(hex), why })?;
        Ok(Digest { algorithm: Algorithm::Sha256, hex: hex.to_string() })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, for people.
    pub fn short_hex(&self) -> &str {
        self.hex.get(..12).unwrap_or(&self.hex)
    }

    /// Where the blob of this digest is in an OCI image layout: `blobs/sha256/<hex>`.
    pub fn layout_path(&self) -> PathBuf {
        ["blobs", self.algorithm.name(), &self.hex].iter().collect()
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let refuse = |why| DigestError { shown: shown(s), why };
        let Some((algorithm, hex)) = s.split_once(':') else { return Err(refuse(Why::NoAlgorithm)) };
        if algorithm != Algorithm::Sha256.name() {
            return Err(refuse(Why::Algorithm(shown(algorithm))));
        }
        check_hex(hex).map_err(refuse)?;
        Ok(Digest { algorithm: Algorithm::Sha256, hex: hex.to_string() })
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Digest, DigestError> {
        d.as_ref().parse()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e| serde::de::Error::custom(format_args!("the digest {e}")))
    }
}

/// `sha256:<hex>` of some bytes, as text.
pub fn sha256_digest(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hashes a reader to the end; returns (hex, length).
pub fn sha256_reader(mut r: impl Read) -> io::Result<(String, u64)> {
    // One buffer per thread, not one per call: a tree of small files would spend more time
    // allocating and zeroing buffers than hashing.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.try_borrow_mut().map_err(io::Error::other)?;
        if buf.is_empty() {
            buf.resize(256 * 1024, 0);
        }
        let mut h = Sha256::new();
        let mut n = 0u64;
        loop {
            let k = match r.read(&mut buf) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        Ok((hex(&h.finalize()), n))
    })
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_sha256(self.hasher.finalize().into()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), len: 0 }
    }

    /// The inner reader, the digest and the byte count.
    pub fn finish(self) -> (R, Digest, u64) {
        (self.inner, Digest::from_sha256(self.hasher.finalize().into()), self.len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, d, n) = w.finish();
        assert_eq!((inner.len(), n), (3, 3));
        assert_eq!(d, Digest::of(b"abc"));
        assert_eq!(d.to_string(), sha256_digest(b"abc"));
    }

    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_digest_is_parsed_once_and_shown_as_it_was_read() {
        let d: Digest = ABC.parse().unwrap();
        assert_eq!(d, Digest::of(b"abc"));
        assert_eq!(d.to_string(), ABC);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex(), &ABC[7..]);
        assert_eq!(d.short_hex(), "ba7816bf8f01");
        assert_eq!(d.layout_path(), PathBuf::from(format!("blobs/sha256/{}", &ABC[7..])));
        assert_eq!(Digest::from_sha256_hex(d.hex()).unwrap(), d);
        let oci: oci_spec::image::Digest = ABC.parse().unwrap();
        assert_eq!(Digest::try_from(&oci).unwrap(), d);
    }

    #[test]
    fn malformed_digests_are_refused_with_the_reason() {
        let why = |s: &str| s.parse::<Digest>().unwrap_err().why().clone();
        assert_eq!(why("x:abc"), Why::Algorithm("\"x\"".into()));
        assert_eq!(why(&ABC.replace("sha256", "sha512")), Why::Algorithm("\"sha512\"".into()));
        assert_eq!(why(&ABC.to_uppercase().replace("SHA256", "sha256")), Why::Uppercase);
        assert_eq!(why("sha256:abc"), Why::Length(3));
        assert_eq!(why(&format!("{ABC}0")), Why::Length(65));
        assert_eq!(why("sha256:"), Why::Length(0));
        assert_eq!(why(&ABC.replace('b', "g")), Why::NotHex('g'));
        // Multi-byte characters are never cut: they are not hex digits.
        assert_eq!(why(&format!("sha256:{}", "é".repeat(32))), Why::NotHex('é'));
        assert_eq!(why(&ABC[7..]), Why::NoAlgorithm);
        assert_eq!(
            "x:abc".parse::<Digest>().unwrap_err().to_string(),
            "\"x:abc\", which is not sha256: and 64 lowercase hex digits (kiln reads sha256 digests only, not \"x\")"
        );
        assert!(Digest::from_sha256_hex("abc").is_err());
        assert!(Digest::from_sha256_hex(ABC).is_err(), "a file name holds no algorithm");
    }

    #[test]
    fn json_holds_a_digest_as_its_string() {
        let d = Digest::of(b"abc");
        let text = serde_json::to_string(&std::collections::BTreeMap::from([(d.clone(), vec![d.clone()])])).unwrap();
        assert_eq!(text, format!("{{\"{ABC}\":[\"{ABC}\"]}}"));
        assert_eq!(serde_json::from_str::<Digest>(&format!("\"{ABC}\"")).unwrap(), d);
        let err = serde_json::from_str::<Digest>("\"x:abc\"").unwrap_err().to_string();
        assert!(err.starts_with("the digest \"x:abc\", which is not sha256:"), "{err}");
    }

    #[test]
    fn digests_sort_as_their_strings() {
        let mut digests: Vec<Digest> = ["b", "a", "c", "ab"].iter().map(|s| Digest::of(s.as_bytes())).collect();
        let mut strings: Vec<String> = digests.iter().map(Digest::to_string).collect();
        digests.sort();
        strings.sort();
        assert_eq!(digests.iter().map(Digest::to_string).collect::<Vec<_>>(), strings);
    }
}
