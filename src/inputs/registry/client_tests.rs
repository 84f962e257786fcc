//! The client against stand-ins for what a real registry does at its edges: the URL scheme
//! it picks, and the bearer-token flow (a challenge, a token for the scope asked, wrong
//! credentials named without the password).

use super::client::*;
use crate::inputs::registry::auth::AuthSource;
use crate::inputs::registry::auth::Credentials;
use crate::oci::reference::Reference;
use std::sync::Mutex;
use ureq::http::Method;

#[test]
fn plain_http_only_for_loopback_http_or_insecure() {
    let o = Options::default();
    let c = |s: &str, o: &Options| Client::new(&Reference::parse(s).unwrap(), o).url("/v2/");
    assert_eq!(c("reg.example/a", &o), "https://reg.example/v2/");
    assert_eq!(c("127.0.0.1:5000/a", &o), "http://127.0.0.1:5000/v2/");
    assert_eq!(c("http://reg.lan/a", &o), "http://reg.lan/v2/");
    assert_eq!(c("reg.lan/a", &Options { insecure: true, ..Options::default() }), "http://reg.lan/v2/");
    assert_eq!(c("busybox", &o), "https://registry-1.docker.io/v2/");
}

/// A stand-in for a registry with a token service: `/token` hands out a token for the
/// credentials `u:p`, everything else wants that token. Returns its address and the
/// request lines it saw.
fn token_registry() -> (String, std::sync::Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let (log, realm) = (seen.clone(), format!("http://{addr}/token"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut first, mut auth, mut line) = (String::new(), String::new(), String::new());
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if first.is_empty() {
                    first = line.trim().to_string();
                } else if line.to_ascii_lowercase().starts_with("authorization:") {
                    auth = line[14..].trim().to_string();
                }
                line.clear();
            }
            log.lock().unwrap().push(format!("{first} [{auth}]"));
            let basic = Credentials { user: "u".into(), password: "p".into() }.basic();
            let (status, extra, body) = match (first.contains(" /token?"), auth.as_str()) {
                (true, a) if a == basic => ("200 OK", String::new(), r#"{"token":"t0k"}"#.to_string()),
                (true, _) => ("401 Unauthorized", String::new(), String::new()),
                (false, "Bearer t0k") => ("200 OK", String::new(), String::new()),
                (false, _) => (
                    "401 Unauthorized",
                    format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"reg\"\r\n"),
                    String::new(),
                ),
            };
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

#[test]
fn a_bearer_challenge_is_answered_with_a_token_for_the_requests_scope() {
    let (addr, seen) = token_registry();
    let r = Reference::parse(&format!("{addr}/team/app:1")).unwrap();
    let auth = AuthSource { env: Some(Credentials { user: "u".into(), password: "p".into() }), docker_config: None };
    let c = Client::new(&r, &Options { auth, tries: 1, ..Options::default() });
    let url = c.url("/v2/team/app/blobs/sha256:00");
    let answer = c.send(Method::HEAD, &url, &[], Body::Empty, "repository:team/app:pull,push");
    assert_eq!(answer.ok().map(|a| a.status().as_u16()), Some(200));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[1].contains("GET /token?scope=repository%3Ateam%2Fapp%3Apull%2Cpush&service=reg"), "{seen:?}");
    assert!(seen[2].ends_with("[Bearer t0k]"), "{seen:?}");

    let wrong =
        AuthSource { env: Some(Credentials { user: "u".into(), password: "n0t-the-pw".into() }), docker_config: None };
    let c = Client::new(&r, &Options { auth: wrong, tries: 1, ..Options::default() });
    let e = c
        .retrying("a check", |_| c.send(Method::HEAD, &url, &[], Body::Empty, "repository:team/app:pull"))
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&addr) && text.contains("KILN_REGISTRY_USER") && !text.contains("n0t-the-pw"), "{text}");
}
