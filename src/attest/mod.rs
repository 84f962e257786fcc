//! Trust in what kiln wrote: keys and signatures (ECDSA P-256), cosign's simple-signing
//! payload and DSSE envelopes for in-toto statements.
//!
//! These are the pure primitives: bytes and keys in, bytes and verdicts out. Reading key
//! files, pushing signatures and attestations as referrers, and rendering refusals are left to
//! the callers, so each format here can be checked on its own against the tools that define it
//! (openssl for keys and signatures, the DSSE spec's test vector, cosign's payload).

pub mod cosign;
pub mod dsse;
pub mod keys;
mod pem;
pub mod referrers;
pub mod signing;

#[cfg(test)]
mod openssl_tests;
