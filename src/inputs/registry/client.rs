//! One registry spoken to over HTTP: TLS with the system's roots unless the registry is on
//! this machine, written `http://` or `--insecure`; the `WWW-Authenticate` challenge answered
//! with basic credentials or a bearer token; every request bounded by a timeout on each read
//! and write; and [`Client::retrying`], which retries what a flaky link or a busy registry
//! fails (connection resets, timeouts, 429 with `Retry-After`, 5xx) with backoff and jitter.

use super::auth::{AuthSource, Challenge, Found, parse_challenge};
use super::retry::{retry_after, transport};
use crate::error::RegistryError;
use crate::oci::reference::Reference;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{self, Method};

/// How kiln talks to registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plain HTTP for registries that are not on this machine too.
    pub insecure: bool,
    /// The longest kiln waits for a connection, or for one read or write to progress.
    pub timeout: Duration,
    /// Tries of each request (and each blob) before a push or pull gives up.
    pub tries: u32,
    /// Blobs sent or fetched at once.
    pub jobs: usize,
    /// Blobs up to this size are sent in one request, larger ones in chunks of it: a link
    /// cut off between chunks loses only the chunk it was sending.
    pub chunk: u64,
    pub auth: AuthSource,
    /// kiln's cache, where a push remembers which repository got each blob (for mounts).
    pub cache: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            insecure: false,
            timeout: Duration::from_secs(30),
            tries: 5,
            jobs: 4,
            chunk: 32 << 20,
            auth: AuthSource::default(),
            cache: None,
        }
    }
}

/// A request's body.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of exactly this many bytes.
    Stream(&'a mut dyn Read, u64),
}

/// What one try of a request came to, when it did not succeed.
pub(crate) enum Failed {
    /// Worth another try (after this long, when the registry said so).
    Retry(String, Option<Duration>),
    /// Not worth another.
    Fatal(RegistryError),
}

pub(crate) type Answer = http::Response<ureq::Body>;

/// How the registry asked to be authenticated, learnt from its challenge.
#[derive(Debug, Clone, Default)]
enum Scheme {
    #[default]
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Default)]
struct AuthState {
    scheme: Scheme,
    /// Looked up once, when the registry first asks.
    found: Option<Option<Found>>,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
}

/// A registry, spoken to.
pub struct Client {
    /// `host[:port]`, as messages name it.
    pub registry: String,
    base: String,
    agent: ureq::Agent,
    opts: Options,
    state: Mutex<AuthState>,
}

/// The bytes kiln reads of a registry's answer that is not a blob (errors, tokens).
pub(crate) const MAX_ANSWER: u64 = 1 << 20;

impl Client {
    /// A client for the registry of `r`.
    pub fn new(r: &Reference, opts: &Options) -> Client {
        let plain = !r.https && (r.plain_http || opts.insecure || r.is_loopback());
        let base = format!("{}://{}", if plain { "http" } else { "https" }, r.api_host());
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(opts.timeout))
            .timeout_per_read(Some(opts.timeout))
            .timeout_per_write(Some(opts.timeout))
            .accept_encoding("identity")
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Client {
            registry: r.registry.clone(),
            base,
            agent,
            opts: opts.clone(),
            state: Mutex::new(AuthState::default()),
        }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The URL of an API path (`/v2/…`), or of a `Location` the registry gave.
    pub(crate) fn url(&self, path_or_location: &str) -> String {
        if path_or_location.starts_with("http://") || path_or_location.starts_with("https://") {
            path_or_location.to_string()
        } else {
            format!("{}{path_or_location}", self.base)
        }
    }

    fn auth_header(&self, url: &str, scope: &str) -> Result<Option<String>, Failed> {
        if !url.starts_with(&self.base) {
            return Ok(None);
        }
        let state = self.state.lock().map_err(|_| Failed::Retry("a thread failed".into(), None))?;
        match &state.scheme {
            Scheme::Basic => Ok(state.found.clone().flatten().map(|f| f.credentials.basic())),
            Scheme::Bearer { realm, service } => {
                if let Some(t) = state.tokens.get(scope) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let (realm, service, found) = (realm.clone(), service.clone(), state.found.clone().flatten());
                drop(state);
                let token = self.token(&realm, service.as_deref(), scope, found.as_ref())?;
                let mut state = self.state.lock().map_err(|_| Failed::Retry("a thread failed".into(), None))?;
                state.tokens.insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
            Scheme::Unknown => Ok(None),
        }
    }

    /// Fetches a bearer token for `scope` from the challenge's realm.
    fn token(&self, realm: &str, service: Option<&str>, scope: &str, found: Option<&Found>) -> Result<String, Failed> {
        let mut url = format!("{realm}{}scope={}", if realm.contains('?') { '&' } else { '?' }, encode(scope));
        if let Some(s) = service {
            url.push_str(&format!("&service={}", encode(s)));
        }
        let mut req = http::Request::get(&url);
        if let Some(f) = found {
            req = req.header("Authorization", f.credentials.basic());
        }
        let req = req.body(()).map_err(|e| Failed::Fatal(self.protocol("a token", e.to_string())))?;
        let mut answer = self.agent.run(req).map_err(|e| transport(&e))?;
        let status = answer.status().as_u16();
        let body = answer.body_mut().with_config().limit(MAX_ANSWER).read_to_vec().unwrap_or_default();
        match status {
            200 => {}
            401 | 403 => return Err(Failed::Fatal(self.auth_refused(found, format!("{status} from {realm}")))),
            429 | 500..=599 => {
                return Err(Failed::Retry(format!("{status} from {realm}"), retry_after(answer.headers())));
            }
            _ => return Err(Failed::Fatal(self.protocol("a token request", format!("{status} from {realm}")))),
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|_| Failed::Fatal(self.protocol("a token", "not JSON")))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Failed::Fatal(self.protocol("a token request", "no token in the answer")))
    }

    fn auth_refused(&self, found: Option<&Found>, reason: String) -> RegistryError {
        RegistryError::Auth { registry: self.registry.clone(), source_name: found.map(|f| f.source.clone()), reason }
    }

    pub(crate) fn protocol(&self, what: &str, reason: impl Into<String>) -> RegistryError {
        RegistryError::Protocol { registry: self.registry.clone(), what: what.to_string(), reason: reason.into() }
    }

    /// Learns the scheme from a challenge; `Ok(true)` when the request is worth sending again
    /// (`sent_auth`: it carried credentials or a token already).
    fn challenged(&self, answer: &Answer, scope: &str, sent_auth: bool) -> Result<bool, Failed> {
        let header = answer.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("");
        let challenge = parse_challenge(header);
        let mut state = self.state.lock().map_err(|_| Failed::Retry("a thread failed".into(), None))?;
        if state.found.is_none() {
            state.found = Some(self.opts.auth.find(&self.registry).map_err(Failed::Fatal)?);
        }
        let found = state.found.clone().flatten();
        state.tokens.remove(scope);
        let again = match challenge {
            None => false,
            // Credentials sent and refused: they are wrong.
            Some(Challenge::Basic) if sent_auth => false,
            Some(Challenge::Basic) => {
                state.scheme = Scheme::Basic;
                found.is_some()
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                state.scheme = Scheme::Bearer { realm, service };
                true
            }
        };
        drop(state);
        if again { Ok(true) } else { Err(Failed::Fatal(self.auth_refused(found.as_ref(), "401 Unauthorized".into()))) }
    }

    /// One try of a request; a 401 is answered once by authenticating (when the body can be
    /// sent again). `scope` is the bearer scope it needs (`repository:NAME:pull,push`).
    pub(crate) fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
        scope: &str,
    ) -> Result<Answer, Failed> {
        for _ in 0..2 {
            let mut req = http::Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let auth = self.auth_header(url, scope)?;
            let sent_auth = auth.is_some();
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let resent = matches!(body, Body::Stream(..));
            let result = match &mut body {
                Body::Empty if method == Method::GET || method == Method::HEAD => {
                    self.agent.run(req.body(()).map_err(|e| Failed::Fatal(self.protocol(url, e.to_string())))?)
                }
                Body::Empty => self.run(req.header("Content-Length", "0"), ureq::SendBody::none(), url)?,
                Body::Bytes(b) => self.run(
                    req.header("Content-Length", b.len().to_string()),
                    ureq::SendBody::from_reader(&mut &b[..]),
                    url,
                )?,
                Body::Stream(r, len) => {
                    self.run(req.header("Content-Length", len.to_string()), ureq::SendBody::from_reader(r), url)?
                }
            };
            let answer = result.map_err(|e| transport(&e))?;
            if answer.status() == 401 && url.starts_with(&self.base) {
                if self.challenged(&answer, scope, sent_auth)? && !resent {
                    continue;
                }
                return Err(Failed::Retry("401 Unauthorized (authenticated again)".into(), Some(Duration::ZERO)));
            }
            return Ok(answer);
        }
        Err(Failed::Fatal(self.auth_refused(self.found().as_ref(), "401 Unauthorized after authenticating".into())))
    }

    fn run(
        &self,
        req: http::request::Builder,
        body: ureq::SendBody<'_>,
        url: &str,
    ) -> Result<Result<Answer, ureq::Error>, Failed> {
        let req = req.body(body).map_err(|e| Failed::Fatal(self.protocol(url, e.to_string())))?;
        Ok(self.agent.run(req))
    }

    fn found(&self) -> Option<Found> {
        self.state.lock().ok().and_then(|s| s.found.clone().flatten())
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body of a manifest or JSON answer, at most [`crate::store::walk::MAX_JSON`] bytes: a
/// cut answer is worth another try, a larger one is not.
pub(crate) fn read_json_body(c: &Client, answer: &mut Answer) -> Result<Vec<u8>, Failed> {
    let limit = crate::store::walk::MAX_JSON;
    match answer.body_mut().with_config().limit(limit).read_to_vec() {
        Ok(bytes) => Ok(bytes),
        Err(ureq::Error::BodyExceedsLimit(_)) => Err(Failed::Fatal(c.protocol(
            "a manifest",
            format!("the answer is larger than the {limit} bytes kiln reads of a manifest (its limit)"),
        ))),
        Err(e) => Err(Failed::Retry(e.to_string(), None)),
    }
}

/// A header's value as text.
pub(crate) fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers().get(name).and_then(|v| v.to_str().ok())
}
