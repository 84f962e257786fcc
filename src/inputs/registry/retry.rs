//! What the registry's answers come to: [`Client::retrying`] runs a request until it
//! succeeds, fails for good or its tries are spent, waiting between tries as the registry
//! asked (`Retry-After`) or with exponential backoff and jitter; [`Client::unexpected`] turns
//! an answer kiln did not expect into another try (429, 5xx) or a refusal with the registry's
//! own message.

use super::client::{Answer, Client, Failed, MAX_ANSWER};
use crate::error::RegistryError;
use serde_json::Value;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;
use ureq::http::{self, HeaderMap};

impl Client {
    /// Runs `f` until it succeeds, it fails for good, or the tries are spent; waits between
    /// tries as the registry asked (`Retry-After`) or with exponential backoff and jitter.
    pub(crate) fn retrying<T>(
        &self,
        what: &str,
        mut f: impl FnMut(u32) -> Result<T, Failed>,
    ) -> Result<T, RegistryError> {
        let tries = self.options().tries.max(1);
        let mut last = String::new();
        for n in 0..tries {
            match f(n) {
                Ok(t) => return Ok(t),
                Err(Failed::Fatal(e)) => return Err(e),
                Err(Failed::Retry(reason, after)) => {
                    last = reason;
                    if n + 1 < tries {
                        std::thread::sleep(after.map_or_else(|| backoff(n), |a| a.min(Duration::from_secs(60))));
                    }
                }
            }
        }
        Err(RegistryError::Unreachable { registry: self.registry.clone(), what: what.to_string(), tries, reason: last })
    }

    /// What an answer that is not the one expected comes to: another try for 429 and 5xx, a
    /// refusal with the registry's own message otherwise.
    pub(crate) fn unexpected(&self, what: &str, mut answer: Answer) -> Failed {
        let status = answer.status().as_u16();
        if status == 429 || (500..600).contains(&status) {
            return Failed::Retry(format!("{status} {}", reason_phrase(status)), retry_after(answer.headers()));
        }
        let body = answer.body_mut().with_config().limit(MAX_ANSWER).read_to_vec().unwrap_or_default();
        let message = error_message(&body).unwrap_or_else(|| reason_phrase(status).to_string());
        let help = match status {
            403 => Some("the credentials are good but may not push to this repository".to_string()),
            404 => Some(
                "check the repository's name; some registries create repositories only through their web pages".into(),
            ),
            _ => None,
        };
        Failed::Fatal(RegistryError::Refused {
            registry: self.registry.clone(),
            what: what.to_string(),
            status,
            message,
            help,
        })
    }
}

fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

/// The `message`s of a distribution API error body (`{"errors":[{"code":…,"message":…}]}`).
fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msgs: Vec<String> = v
        .get("errors")?
        .as_array()?
        .iter()
        .map(|e| {
            let field = |k| e.get(k).and_then(Value::as_str).unwrap_or("");
            format!("{} {}", field("code"), field("message")).trim().to_string()
        })
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

/// A transport failure (reset, timeout, refused connection): worth another try.
pub(crate) fn transport(e: &ureq::Error) -> Failed {
    match e {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            Failed::Fatal(RegistryError::Protocol {
                registry: String::new(),
                what: "a request".into(),
                reason: e.to_string(),
            })
        }
        _ => Failed::Retry(e.to_string(), None),
    }
}

/// `Retry-After` in seconds, as registries send it.
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    h.get("retry-after")?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Backoff before try `n + 2`: 0.5 s doubling to at most 8 s, plus up to half again of
/// jitter, so that many clients failing together do not come back together.
fn backoff(n: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.pow(n.min(4));
    let jitter = RandomState::new().hash_one(n) % 1000;
    base + base.mul_f64(jitter as f64 / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter_within_half() {
        for n in 0..8 {
            let base = Duration::from_millis(500) * 2u32.pow(n.min(4));
            let b = backoff(n);
            assert!(b >= base && b <= base + base / 2, "try {n}: {b:?}");
        }
    }

    #[test]
    fn registry_errors_are_read_from_their_json() {
        let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        assert_eq!(error_message(body).as_deref(), Some("MANIFEST_BLOB_UNKNOWN blob unknown to registry"));
        assert_eq!(error_message(b"<html>"), None);
        assert_eq!(super::super::client::encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }

    #[test]
    fn retry_after_is_honoured_in_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None, "a date falls back to backoff");
    }
}
