//! Who kiln is to a registry: credentials from `KILN_REGISTRY_USER`/`KILN_REGISTRY_PASSWORD`
//! (given by the command line) or docker's `config.json` (`credHelpers`, `auths`,
//! `credsStore`), and the `WWW-Authenticate` challenge a registry answers with. No credential
//! is ever part of a message: [`Credentials`] prints as its user name only.

use crate::error::RegistryError;
use crate::oci::reference::DOCKER_HUB;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A user name and a password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, <hidden>)", self.user)
    }
}

impl Credentials {
    /// The value of a `Basic` `Authorization` header.
    pub fn basic(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.user, self.password)))
    }
}

/// Where credentials may come from, as the command line found them.
#[derive(Debug, Clone, Default)]
pub struct AuthSource {
    /// `KILN_REGISTRY_USER` and `KILN_REGISTRY_PASSWORD`, for every registry.
    pub env: Option<Credentials>,
    /// Docker's `config.json` (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
}

/// Credentials found for one registry, and where they came from (for messages).
#[derive(Debug, Clone)]
pub struct Found {
    pub credentials: Credentials,
    pub source: String,
}

/// The keys docker's `config.json` may file a registry under.
fn config_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")];
    if registry == DOCKER_HUB {
        keys.insert(0, "https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
    }
    keys
}

/// The server name a credential helper is asked about.
fn helper_server(registry: &str) -> String {
    if registry == DOCKER_HUB { "https://index.docker.io/v1/".into() } else { registry.to_string() }
}

impl AuthSource {
    /// The credentials for `registry`, if any are configured.
    pub fn find(&self, registry: &str) -> Result<Option<Found>, RegistryError> {
        if let Some(c) = &self.env {
            return Ok(Some(Found {
                credentials: c.clone(),
                source: "KILN_REGISTRY_USER/KILN_REGISTRY_PASSWORD".into(),
            }));
        }
        let Some(path) = &self.docker_config else { return Ok(None) };
        let shown = path.display().to_string();
        let bad = |reason: String| RegistryError::Credentials {
            registry: registry.to_string(),
            source_name: shown.clone(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let config: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let keys = config_keys(registry);
        let helpers = config.get("credHelpers").and_then(Value::as_object);
        if let Some(helper) = keys.iter().find_map(|k| helpers.and_then(|h| h.get(k)).and_then(Value::as_str)) {
            return helper_get(helper, registry).map_err(bad);
        }
        let auths = config.get("auths").and_then(Value::as_object);
        if let Some(entry) = keys.iter().find_map(|k| auths.and_then(|a| a.get(k)))
            && let Some(c) = auth_entry(entry).map_err(bad)?
        {
            return Ok(Some(Found { credentials: c, source: shown }));
        }
        match config.get("credsStore").and_then(Value::as_str) {
            Some(store) if !store.is_empty() => helper_get(store, registry).map_err(bad),
            _ => Ok(None),
        }
    }
}

/// One entry of `auths`: `auth` (base64 of `user:password`) or `username` and `password`.
fn auth_entry(entry: &Value) -> Result<Option<Credentials>, String> {
    if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
        let bytes = STANDARD.decode(auth.trim()).map_err(|_| "an `auth` entry is not base64".to_string())?;
        let text = String::from_utf8(bytes).map_err(|_| "an `auth` entry is not UTF-8".to_string())?;
        let (user, password) = text.split_once(':').ok_or("an `auth` entry is not user:password")?;
        return Ok(Some(Credentials { user: user.into(), password: password.into() }));
    }
    let field = |k| entry.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(match (field("username"), field("password")) {
        (Some(user), Some(password)) => Some(Credentials { user, password }),
        _ => None,
    })
}

/// Asks `docker-credential-HELPER get` for the registry's credentials.
fn helper_get(helper: &str, registry: &str) -> Result<Option<Found>, String> {
    if !helper.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(format!("the credential helper name {helper:?} is not a plain name"));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(helper_server(registry).as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if said.contains("credentials not found") || String::from_utf8_lossy(&out.stderr).contains("not found") {
            return Ok(None);
        }
        return Err(format!("{program} get failed ({})", out.status));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|_| format!("{program} get printed no JSON"))?;
    let field = |k| v.get(k).and_then(Value::as_str).map(str::to_string);
    match (field("Username"), field("Secret")) {
        (Some(user), Some(password)) => Ok(Some(Found {
            credentials: Credentials { user, password },
            source: format!("docker-credential-{helper}"),
        })),
        _ => Err(format!("{program} get printed no Username and Secret")),
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses a `WWW-Authenticate` header: `Basic realm="…"` or
/// `Bearer realm="…",service="…",scope="…"`. `None` for schemes kiln does not speak.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `key="value", key=value` pairs; a quoted value may hold commas and `\"`.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return out;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        let h =
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="basic-realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None, "a bearer challenge needs a realm");
    }

    fn config(text: &str) -> (tempfile::TempDir, AuthSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        (dir, AuthSource { env: None, docker_config: Some(path) })
    }

    #[test]
    fn docker_config_auths_are_found_under_the_names_docker_files_them() {
        let auth = STANDARD.encode("u:p:w");
        let (_d, src) = config(&format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.lan:5000":{{"username":"a","password":"b"}}}}}}"#
        ));
        let hub = src.find("docker.io").unwrap().unwrap().credentials;
        assert_eq!((hub.user.as_str(), hub.password.as_str()), ("u", "p:w"));
        let lan = src.find("reg.lan:5000").unwrap().unwrap().credentials;
        assert_eq!((lan.user.as_str(), lan.password.as_str()), ("a", "b"));
        assert!(src.find("other.lan").unwrap().is_none());
        assert!(!format!("{hub:?}").contains("p:w"), "credentials never print their secret");
    }

    #[test]
    fn a_broken_config_is_an_error_naming_the_file_not_a_silent_anonymous_push() {
        let (_d, src) = config(r#"{"auths":{"reg.lan":{"auth":"***"}}}"#);
        let e = src.find("reg.lan").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("base64"), "{e}");
        let (_d, src) = config(r#"{"credHelpers":{"reg.lan":"kiln-test-absent"}}"#);
        let e = src.find("reg.lan").unwrap_err().to_string();
        assert!(e.contains("docker-credential-kiln-test-absent"), "{e}");
    }

    #[test]
    fn the_environment_wins_over_docker_config() {
        let c = Credentials { user: "ci".into(), password: "s3cret".into() };
        let src = AuthSource { env: Some(c.clone()), docker_config: None };
        assert_eq!(src.find("any.lan").unwrap().unwrap().credentials, c);
        assert_eq!(c.basic(), format!("Basic {}", STANDARD.encode("ci:s3cret")));
    }
}
