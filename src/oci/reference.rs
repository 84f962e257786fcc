//! Image references as registries name them: `[scheme://][host[:port]/]repository[:tag][@digest]`,
//! read the way docker reads them (a first part with a `.` or a `:`, or `localhost`, is the
//! host; otherwise the image is on Docker Hub, `library/` for one-part names).

use crate::oci::digest::Digest;
use std::fmt;

/// Docker Hub as references name it, and the host its API answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (Docker Hub as `docker.io`).
    pub registry: String,
    /// The repository path, `library/` added for Docker Hub's one-part names.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    /// Written with `http://`: the registry is spoken to without TLS.
    pub plain_http: bool,
    /// Written with `https://`: TLS even for a registry on this machine.
    pub https: bool,
}

/// Why a string is not a reference, for messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not an image reference: {why}")]
pub struct ReferenceError {
    pub shown: String,
    pub why: String,
}

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    !b.is_empty()
        && alnum(&b[0])
        && alnum(&b[b.len() - 1])
        && b.iter().all(|x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
        && !c.contains("..")
        && !c.contains("___")
}

fn host_ok(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || h.starts_with('[') => (n, Some(p)),
        _ => (h, None),
    };
    let name_ok = (name.starts_with('[') && name.ends_with(']'))
        || (!name.is_empty()
            && name.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    name_ok && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A tag: up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn tag_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let refuse = |why: &str| ReferenceError { shown: s.chars().take(200).collect(), why: why.to_string() };
        let (plain_http, https, rest) = match (s.strip_prefix("http://"), s.strip_prefix("https://")) {
            (Some(r), _) => (true, false, r),
            (None, Some(r)) => (false, true, r),
            (None, None) => (false, false, s),
        };
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| refuse(&e.to_string()))?)),
            None => (rest, None),
        };
        let (host, path) = match rest.split_once('/') {
            Some((h, p)) if h.contains(['.', ':']) || h == "localhost" => (h.to_string(), p),
            _ => (DOCKER_HUB.to_string(), rest),
        };
        if !host_ok(&host) {
            return Err(refuse("the registry is not a host name with an optional port"));
        }
        let (path, tag) = match path.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t.to_string())),
            _ => (path, None),
        };
        if let Some(t) = &tag
            && !tag_ok(t)
        {
            return Err(refuse("a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"));
        }
        if path.is_empty() || !path.split('/').all(component_ok) || path.len() > 255 {
            return Err(refuse("a repository is lowercase letters, digits and `.`, `_`, `-` between `/`"));
        }
        let repository = match (host.as_str(), path.contains('/')) {
            (DOCKER_HUB, false) => format!("library/{path}"),
            _ => path.to_string(),
        };
        Ok(Reference { registry: host, repository, tag, digest, plain_http, https })
    }

    /// The host the registry's API answers on (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API } else { &self.registry }
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8, `[::1]`): spoken
    /// to over plain HTTP, as docker does.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// The same repository at `digest` (the tag dropped).
    pub fn at(&self, digest: &Digest) -> Reference {
        Reference { tag: None, digest: Some(digest.clone()), ..self.clone() }
    }

    /// The reference as docker and skopeo take it: without `http://` or `https://`.
    pub fn plain(&self) -> String {
        Reference { plain_http: false, https: false, ..self.clone() }.to_string()
    }

    /// `host/repository`, without tag or digest.
    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plain_http {
            f.write_str("http://")?;
        } else if self.https {
            f.write_str("https://")?;
        }
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `template` with `{image}` replaced by an image's name: how one `--push` names the
/// repositories of several images.
pub fn expand_image(template: &str, image: &str) -> String {
    template.replace("{image}", image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn hosts_are_told_from_repositories_as_docker_tells_them() {
        let a = r("127.0.0.1:5000/team/api:v1");
        assert_eq!(
            (a.registry.as_str(), a.repository.as_str(), a.tag.as_deref()),
            ("127.0.0.1:5000", "team/api", Some("v1"))
        );
        assert!(a.is_loopback() && !a.plain_http);
        let b = r("busybox");
        assert_eq!(
            (b.registry.as_str(), b.repository.as_str(), b.api_host()),
            ("docker.io", "library/busybox", "registry-1.docker.io")
        );
        let c = r("team/api");
        assert_eq!((c.registry.as_str(), c.repository.as_str()), ("docker.io", "team/api"));
        let d = r("localhost/api");
        assert_eq!(d.registry, "localhost");
        assert!(d.is_loopback());
        let e = r("ghcr.io/o/p@sha256:0000000000000000000000000000000000000000000000000000000000000000");
        assert!(e.tag.is_none() && e.digest.is_some() && !e.is_loopback());
        let f = r("http://reg.lan:8080/x:1.0");
        assert!(f.plain_http);
        assert_eq!(f.to_string(), "http://reg.lan:8080/x:1.0");
        assert_eq!(r("reg.lan/x").with_tag("t").to_string(), "reg.lan/x:t");
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        for bad in [
            "",
            "Upper/Case",
            "reg.lan/",
            "reg.lan/x:",
            "reg.lan/x:-t",
            "reg.lan/x@sha256:12",
            "a..b",
            "reg.lan:port/x",
            "x/../y",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} was taken");
        }
        let e = Reference::parse("reg.lan/x@md5:00").unwrap_err();
        assert!(e.to_string().contains("reg.lan/x@md5:00"), "{e}");
    }

    #[test]
    fn one_push_names_each_image() {
        assert_eq!(expand_image("reg.lan/p/{image}:1", "api"), "reg.lan/p/api:1");
    }
}
