//! Trust in what kiln wrote: keys and signatures (ECDSA P-256), cosign's simple-signing
//! payload, DSSE envelopes for in-toto statements, SBOMs and build provenance.
//!
//! The formats (keys, cosign payloads, DSSE, SBOMs, provenance) are pure: bytes and keys in,
//! bytes and verdicts out, each checked against the tools that define it (openssl, the DSSE
//! spec's test vector, cosign's payload, pyspdxtools, CycloneDX's schema). [`referrers`],
//! [`signing`] and [`write`] put them into a release as OCI 1.1 artifacts whose subject is
//! what they speak of.

pub mod collect;
pub mod cosign;
pub mod dsse;
pub mod keys;
mod pem;
pub mod provenance;
pub mod referrers;
pub mod sbom;
pub mod signing;
pub mod write;

#[cfg(test)]
mod openssl_tests;
