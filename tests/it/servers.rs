//! Real servers for the integration tests, each in a temporary directory of its own and stopped
//! by its process id when dropped: Debian's `docker-registry` ([`Registry`]), a TCP proxy that
//! injects faults into the traffic to one ([`FaultProxy`]), Debian's `dockerd` ([`Dockerd`]) and
//! podman with its state kept under one directory ([`podman_cmd`], [`podman_run`]).
//!
//! Nothing here changes process-wide state: every server listens on a port the kernel picked
//! or on a socket in its own directory, and every setting goes on the child's `Command`.
#![allow(dead_code)]

use crate::common::{require, run, stderr, stdout};
use rustix::process::{Pid, Resource, Signal, getrlimit, kill_process};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Child processes

/// Locks a mutex, taking the data over from a thread that panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A server process shared between handles: any of them can stop it, once.
#[derive(Clone)]
struct Process {
    child: Arc<ChildSlot>,
}

/// The child of a [`Process`]; the last handle dropped stops it, should nobody have.
struct ChildSlot(Mutex<Option<Child>>);

impl Drop for ChildSlot {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.0).take() {
            terminate(&mut child, Duration::from_secs(5));
        }
    }
}

impl Process {
    fn new(child: Child) -> Process {
        Process { child: Arc::new(ChildSlot(Mutex::new(Some(child)))) }
    }

    /// The exit status when the process has ended (or was stopped), else `None`.
    fn exited(&self) -> Option<ExitStatus> {
        match lock(&self.child.0).as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => Some(ExitStatus::default()),
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; the child is reaped. The lock is held
    /// throughout, so a second caller returns only once the process is gone.
    fn stop(&self, grace: Duration) {
        let mut guard = lock(&self.child.0);
        if let Some(mut child) = guard.take() {
            terminate(&mut child, grace);
        }
    }
}

/// Stops a child by its process id. It is not reaped before it exits, so the id cannot be
/// reused by another process meanwhile.
fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = kill_process(Pid::from_child(child), Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Spawns `cmd` with its stdout and stderr both appended to `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Process {
    let file = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Process::new(child)
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP

/// The answer to one plain HTTP/1.1 request.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

/// Sends one HTTP/1.1 request with `Connection: close` to `addr` and reads the whole answer.
/// Fails when the connection is refused or reset, or closes before a full status line; waits
/// 30 seconds at most for the answer.
pub fn http(addr: &str, method: &str, target: &str, body: &[u8]) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    parse_response(&answer)
}

fn parse_response(answer: &[u8]) -> io::Result<HttpResponse> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {answer:?}"));
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no full HTTP head"))?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no HTTP status"))?;
    Ok(HttpResponse { status, head, body: answer[end + 4..].to_vec() })
}

// ---------------------------------------------------------------------------------------------
// Registry

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, over plain HTTP, with its
/// storage, configuration and log in a temporary directory of its own.
pub struct Registry {
    dir: tempfile::TempDir,
    storage: PathBuf,
    port: u16,
    process: Process,
}

/// One line of the registry's access log (Apache's combined format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub method: String,
    /// The request's path, without the query.
    pub path: String,
    /// The query after `?`, still percent-encoded; empty when there is none.
    pub query: String,
    pub status: u16,
}

impl AccessEntry {
    /// Whether the query has the parameter `key`.
    pub fn has_param(&self, key: &str) -> bool {
        self.query.split('&').any(|p| p.split('=').next() == Some(key))
    }
}

impl Registry {
    /// Starts a registry that needs no credentials; panics (with its log) when it does not
    /// answer `GET /v2/` within 20 seconds.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// Starts a registry that asks for HTTP basic authentication with one user (an
    /// `htpasswd -B` file, which distribution accepts without TLS).
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user, password)))
    }

    /// Starts a registry that speaks only HTTPS, with a certificate for 127.0.0.1 signed by a
    /// certificate authority made for it (openssl); returns it and the authority's PEM file.
    pub fn start_with_tls() -> (Registry, PathBuf) {
        let dir = tempfile::Builder::new().prefix("kiln-registry-").tempdir().expect("temp dir");
        let ca = make_certificates(dir.path());
        (Registry::launch_in(dir, None, true), ca)
    }

    fn launch(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new().prefix("kiln-registry-").tempdir().expect("temp dir");
        Registry::launch_in(dir, auth, false)
    }

    fn launch_in(dir: tempfile::TempDir, auth: Option<(&str, &str)>, tls: bool) -> Registry {
        if let Some((user, password)) = auth {
            let line = run(Command::new(require("htpasswd")).args(["-Bbn", user, password]));
            std::fs::write(dir.path().join("htpasswd"), line.trim_end().to_string() + "\n").unwrap();
        }
        let expected = if auth.is_some() { 401 } else { 200 };
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            let mut text = registry_config(dir.path(), port, auth.is_some());
            if tls {
                let d = dir.path().display();
                text = text.replace("  secret: kiln-test-secret\n", &format!("  secret: kiln-test-secret\n  tls:\n    certificate: \"{d}/server.pem\"\n    key: \"{d}/server.key\"\n"));
            }
            std::fs::write(&config, text).unwrap();
            let mut cmd = Command::new(require("docker-registry"));
            cmd.arg("serve").arg(&config);
            let process = spawn_logged(&mut cmd, &dir.path().join("registry.log"));
            let ready = if tls {
                tls_ready(&process, port, &dir.path().join("registry.log"))
            } else {
                registry_ready(&process, port, &dir.path().join("registry.log"), expected)
            };
            if ready {
                return Registry { storage: dir.path().join("storage"), dir, port, process };
            }
            process.stop(Duration::ZERO);
        }
        panic!("docker-registry found no free port in 5 tries");
    }

    /// The `host:port` to push to, e.g. `docker://ADDR/name:tag`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's log so far: its own messages and the access log, one request a line.
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join("registry.log"))
    }

    /// The root of the registry's filesystem storage.
    pub fn storage(&self) -> &Path {
        &self.storage
    }

    /// Every request of the access log so far, in order. The registry writes a line once it
    /// has handled the request, just before the answer's last bytes leave.
    pub fn requests(&self) -> Vec<AccessEntry> {
        self.log().lines().filter_map(access_entry).collect()
    }

    /// How many blob uploads the registry completed: `PUT /v2/NAME/blobs/uploads/UUID?…digest=…`
    /// answered 201. (Distribution 2.8 has no single-`POST` upload: it answers that 202.)
    pub fn completed_blob_uploads(&self) -> usize {
        let done = |e: &AccessEntry| {
            e.method == "PUT"
                && e.status == 201
                && e.path.split_once("/blobs/uploads/").is_some_and(|(_, uuid)| !uuid.is_empty())
                && e.has_param("digest")
        };
        self.requests().iter().filter(|e| done(e)).count()
    }

    /// How many cross-repository mounts the registry made:
    /// `POST /v2/NAME/blobs/uploads/?from=OTHER&mount=DIGEST` answered 201 (a mount it cannot
    /// make opens an upload instead, answered 202).
    pub fn mounts(&self) -> usize {
        let mounted = |e: &AccessEntry| {
            e.method == "POST" && e.status == 201 && e.path.ends_with("/blobs/uploads/") && e.has_param("mount")
        };
        self.requests().iter().filter(|e| mounted(e)).count()
    }

    /// How many manifests the registry stored: `PUT /v2/NAME/manifests/REF` answered 201.
    pub fn manifest_puts(&self) -> usize {
        self.requests()
            .iter()
            .filter(|e| e.method == "PUT" && e.status == 201 && e.path.contains("/manifests/"))
            .count()
    }

    /// Whether the registry process is still running.
    pub fn is_running(&self) -> bool {
        self.process.exited().is_none()
    }

    /// Stops the registry (SIGTERM, 5 seconds, then SIGKILL); does nothing the second time.
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(5));
    }

    /// A handle that stops the registry from any thread, as [`Registry::stop`] does.
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let process = self.process.clone();
        move || process.stop(Duration::from_secs(5))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free port on 127.0.0.1, as the kernel picks one; another process may take it before the
/// caller binds it, so callers retry.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// Waits for the registry to answer `GET /v2/` with `expected`; false when it could not
/// listen because the port was taken meanwhile. Panics, with the log, on any other failure.
fn registry_ready(process: &Process, port: u16, log: &Path, expected: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = process.exited() {
            let log = read_lossy(log);
            if log.contains("address already in use") {
                return false;
            }
            panic!("docker-registry exited ({status}) before answering:\n{log}");
        }
        let answered = http(&format!("127.0.0.1:{port}"), "GET", "/v2/", b"").map(|r| r.status).ok();
        if answered == Some(expected) && read_lossy(log).contains("listening on") {
            return true;
        }
        let late = Instant::now() > deadline;
        assert!(!late, "docker-registry did not answer in 20 s ({answered:?}):\n{}", read_lossy(log));
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a TLS registry says it listens and takes connections.
fn tls_ready(process: &Process, port: u16, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if process.exited().is_some() {
            let log = read_lossy(log);
            if log.contains("address already in use") {
                return false;
            }
            panic!("docker-registry exited before listening:\n{log}");
        }
        if read_lossy(log).contains("listening on") && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        assert!(Instant::now() < deadline, "docker-registry did not listen in 20 s:\n{}", read_lossy(log));
        thread::sleep(Duration::from_millis(50));
    }
}

/// A certificate authority (`ca.pem`) and a server certificate for 127.0.0.1 it signed
/// (`server.pem`, `server.key`) in `dir`, made by openssl; returns the authority's path.
fn make_certificates(dir: &Path) -> PathBuf {
    let openssl = require("openssl");
    let sh = |args: &[&str]| run(Command::new(&openssl).current_dir(dir).args(args));
    sh(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kiln test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    sh(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    sh(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    dir.join("ca.pem")
}

/// distribution's configuration: storage under `dir`, deletes allowed, the access log on.
fn registry_config(dir: &Path, port: u16, auth: bool) -> String {
    let d = dir.display();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: \"{d}/storage\"\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: kiln-test-secret\n"
    );
    if auth {
        config += &format!("auth:\n  htpasswd:\n    realm: kiln-test\n    path: \"{d}/htpasswd\"\n");
    }
    config
}

/// Parses a combined-format access line, such as
/// `127.0.0.1 - - [02/Dec/2026:14:27:08 +0000] "PUT /v2/a/blobs/uploads/U?digest=… HTTP/1.1" 201 0 "" "skopeo/1.9"`.
fn access_entry(line: &str) -> Option<AccessEntry> {
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut words = request.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    if !version.starts_with("HTTP/") || words.next().is_some() {
        return None;
    }
    let status = rest.split(' ').next()?.parse().ok()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some(AccessEntry { method: method.into(), path: path.into(), query: query.into(), status })
}

// ---------------------------------------------------------------------------------------------
// Fault proxy

/// A fault for [`FaultProxy`] to inject, once, into the first request that matches.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The request's method, exactly (`PUT`, `PATCH`, ...).
    pub method: &'static str,
    /// A piece of the request target (path and query), or of the request's head (a header
    /// line such as `Content-Range: 8388608-`), that must appear in it.
    pub path_contains: &'static str,
    /// The least `Content-Length` the request must have. A chunked request has no known
    /// length: only a fault with `min_body: 0` matches it.
    pub min_body: u64,
    pub action: Action,
}

/// What [`FaultProxy`] does to the request a [`Fault`] matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forwards the head and about half the body, then closes both connections at once. The
    /// client's socket is closed with unread bytes in it, so Linux sends the client a reset.
    ResetMidBody,
    /// Reads the request (body included), forwards nothing and answers this status with
    /// `Content-Length: 0` and `Connection: close`, then closes the connection.
    Status(u16),
    /// Reads the request, forwards and answers nothing for this long, then closes the
    /// connection.
    Stall(Duration),
}

/// A TCP proxy on 127.0.0.1 in front of a server (usually a [`Registry`]) that forwards bytes
/// as they are, except for the requests its [`Fault`]s match. It reads HTTP/1.1 requests on
/// the way in (several per kept-alive connection, bodies by `Content-Length`; a chunked one
/// makes it forward the rest of that connection untouched) and forwards answers untouched.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

struct ProxyShared {
    upstream: String,
    faults: Mutex<Vec<Option<Fault>>>,
    fired: Mutex<Vec<String>>,
    stop: AtomicBool,
    /// The sockets of each open connection, shut down when the proxy stops.
    live: Mutex<HashMap<u64, Vec<TcpStream>>>,
    next_id: AtomicU64,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`
    /// (`host:port`).
    pub fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(ProxyShared {
            upstream: upstream.to_string(),
            faults: Mutex::new(faults.into_iter().map(Some).collect()),
            fired: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let addr = listener.local_addr().unwrap();
        let for_thread = Arc::clone(&shared);
        let acceptor = thread::spawn(move || accept_loop(&listener, &for_thread));
        FaultProxy { addr, shared, acceptor: Some(acceptor) }
    }

    /// The proxy's `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// A line for each fault that fired, in order: the method, the path (no query) and what
    /// was done, e.g. `PUT /v2/a/blobs/uploads/UUID: reset after 5000 of 10000 body bytes`.
    pub fn fired(&self) -> Vec<String> {
        lock(&self.shared.fired).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections until the proxy stops, then shuts every open one down and waits for
/// their threads.
fn accept_loop(listener: &TcpListener, shared: &Arc<ProxyShared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(shared);
                workers.push(thread::spawn(move || serve_connection(client, &shared, id)));
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
        workers.retain(|w| !w.is_finished());
    }
    for sockets in lock(&shared.live).values() {
        for s in sockets {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

impl ProxyShared {
    /// Records a connection's sockets; false (and nothing recorded) once the proxy stops.
    fn register(&self, id: u64, sockets: &[&TcpStream]) -> bool {
        let mut live = lock(&self.live);
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        live.insert(id, sockets.iter().filter_map(|s| s.try_clone().ok()).collect());
        true
    }

    /// The action of the first unfired fault that matches, which is fired by this call.
    fn take_fault(&self, req: &RequestHead) -> Option<Action> {
        let mut faults = lock(&self.faults);
        let slot = faults.iter_mut().find(|f| f.as_ref().is_some_and(|f| req.matches(f)))?;
        slot.take().map(|f| f.action)
    }

    fn record(&self, req: &RequestHead, what: &str) {
        let path = req.target.split('?').next().unwrap_or_default();
        lock(&self.fired).push(format!("{} {path}: {what}", req.method));
    }

    /// Waits `d`, or less when the proxy stops.
    fn pause(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10).min(deadline - Instant::now()));
        }
    }
}

/// The parts of a request head the proxy looks at.
#[derive(Debug)]
struct RequestHead {
    raw: Vec<u8>,
    method: String,
    target: String,
    content_length: u64,
    chunked: bool,
    expects_continue: bool,
}

impl RequestHead {
    fn parse(raw: Vec<u8>) -> Option<RequestHead> {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.split("\r\n").map(|l| l.trim_end_matches('\n'));
        let mut words = lines.next()?.split(' ');
        let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
        words.next().filter(|v| v.starts_with("HTTP/1."))?;
        let mut head = RequestHead { raw, method, target, content_length: 0, chunked: false, expects_continue: false };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else { continue };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
            match name.as_str() {
                "content-length" => head.content_length = value.parse().ok()?,
                "transfer-encoding" => head.chunked |= value.contains("chunked"),
                "expect" => head.expects_continue |= value == "100-continue",
                _ => {}
            }
        }
        Some(head)
    }

    fn matches(&self, f: &Fault) -> bool {
        let long_enough = if self.chunked { f.min_body == 0 } else { self.content_length >= f.min_body };
        let head = String::from_utf8_lossy(&self.raw);
        self.method == f.method
            && (self.target.contains(f.path_contains) || head.contains(f.path_contains))
            && long_enough
    }
}

/// Reads one request head, up to and with its empty line. `None` at the end of the stream
/// before a head starts; `Err` for a cut or oversized head (which is then the bytes read).
fn read_head(reader: &mut impl BufRead) -> Result<Option<Vec<u8>>, Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        match reader.read_until(b'\n', &mut head) {
            Ok(0) if head.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(head),
            Ok(_) => {}
        }
        let line = &head[start..];
        if (line == b"\r\n" || line == b"\n") && start == 0 {
            head.clear(); // Blank lines between requests are allowed.
        } else if line == b"\r\n" || line == b"\n" {
            return Ok(Some(head));
        } else if head.len() > 1 << 20 {
            return Err(head);
        }
    }
}

/// One proxied connection: the client's side read through a buffer, the server's side, and
/// the thread that copies the server's answers back.
struct Connection<'a> {
    shared: &'a ProxyShared,
    id: u64,
    client: BufReader<TcpStream>,
    upstream: TcpStream,
    /// Set before a reset, so the answer thread leaves the client's socket alone.
    quiet: Arc<AtomicBool>,
    answers: Option<JoinHandle<()>>,
}

/// How the requests of a connection ended.
enum Ending {
    /// The client closed its side, or the proxy is stopping.
    Eof,
    /// A fault answered or stalled: close both sides.
    Close,
    /// A fault cut the request: close both sides abruptly.
    Reset,
}

fn serve_connection(client: TcpStream, shared: &ProxyShared, id: u64) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect(&shared.upstream) else { return };
    if !shared.register(id, &[&client, &upstream]) {
        return;
    }
    let quiet = Arc::new(AtomicBool::new(false));
    let answers = match (upstream.try_clone(), client.try_clone()) {
        (Ok(from), Ok(to)) => {
            let quiet = Arc::clone(&quiet);
            Some(thread::spawn(move || forward_answers(from, to, &quiet)))
        }
        _ => None,
    };
    let mut conn = Connection { shared, id, client: BufReader::new(client), upstream, quiet, answers };
    let ending = conn.forward_requests();
    conn.finish(ending);
}

/// Copies the server's bytes to the client until the server closes, then closes the client's
/// sending side (unless the connection is being reset).
fn forward_answers(mut from: TcpStream, mut to: TcpStream, quiet: &AtomicBool) {
    let _ = io::copy(&mut from, &mut to);
    if !quiet.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Write);
    }
}

impl Connection<'_> {
    /// Forwards requests one by one until the client stops or a fault fires.
    fn forward_requests(&mut self) -> Ending {
        loop {
            // Anything but HTTP (a TLS hello, which skopeo tries first) has no line to wait for.
            match self.client.fill_buf() {
                Ok([]) | Err(_) => return Ending::Eof,
                Ok([first, ..]) if !(first.is_ascii_uppercase() || b"\r\n".contains(first)) => {
                    return self.forward_raw(&[]);
                }
                Ok(_) => {}
            }
            let raw = match read_head(&mut self.client) {
                Ok(Some(raw)) => raw,
                Ok(None) => return Ending::Eof,
                Err(partial) => return self.forward_raw(&partial),
            };
            let Some(req) = RequestHead::parse(raw.clone()) else { return self.forward_raw(&raw) };
            if let Some(action) = self.shared.take_fault(&req) {
                return self.inject(&req, action);
            }
            if req.chunked {
                return self.forward_raw(&req.raw);
            }
            if self.forward(&req, req.content_length).is_err() {
                return Ending::Eof;
            }
        }
    }

    /// Sends the head and the first `body` bytes of the request's body to the server.
    fn forward(&mut self, req: &RequestHead, body: u64) -> io::Result<()> {
        self.upstream.write_all(&req.raw)?;
        let copied = io::copy(&mut (&mut self.client).take(body), &mut self.upstream)?;
        if copied < body {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.upstream.flush()
    }

    /// Sends `first` and then everything else the client sends, as it is.
    fn forward_raw(&mut self, first: &[u8]) -> Ending {
        if self.upstream.write_all(first).is_ok() {
            let _ = io::copy(&mut self.client, &mut self.upstream);
        }
        Ending::Eof
    }

    /// Does what a fault says; its line in [`FaultProxy::fired`] is written first, so a
    /// client that sees the fault also sees the line.
    fn inject(&mut self, req: &RequestHead, action: Action) -> Ending {
        match action {
            Action::ResetMidBody => {
                let half = if req.chunked { 0 } else { req.content_length / 2 };
                self.shared.record(req, &format!("reset after {half} of {} body bytes", req.content_length));
                let _ = self.forward(req, half);
                self.await_unread_bytes();
                Ending::Reset
            }
            Action::Status(code) => {
                self.discard_body(req);
                self.shared.record(req, &format!("answered {code}"));
                let answer =
                    format!("HTTP/1.1 {code} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", reason(code));
                let _ = self.client.get_mut().write_all(answer.as_bytes());
                Ending::Close
            }
            Action::Stall(d) => {
                self.discard_body(req);
                self.shared.record(req, &format!("stalled {d:?}"));
                self.shared.pause(d);
                Ending::Close
            }
        }
    }

    /// Waits (a second at most) until the client's socket holds bytes not read yet: closing it
    /// then makes Linux send a reset rather than a FIN, as SO_LINGER 0 would.
    fn await_unread_bytes(&self) {
        let socket = self.client.get_ref();
        let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = socket.peek(&mut [0u8; 1]);
    }

    /// Reads the request's body, when it has a length and the client is not waiting for a
    /// `100 Continue` before sending it.
    fn discard_body(&mut self, req: &RequestHead) {
        if !req.chunked && !req.expects_continue {
            let _ = io::copy(&mut (&mut self.client).take(req.content_length), &mut io::sink());
        }
    }

    /// Closes the connection as `ending` says and forgets its sockets.
    fn finish(mut self, ending: Ending) {
        match ending {
            Ending::Eof => {
                let _ = self.upstream.shutdown(Shutdown::Write);
            }
            Ending::Close => {
                let _ = self.upstream.shutdown(Shutdown::Both);
                let _ = self.client.get_ref().shutdown(Shutdown::Write);
            }
            Ending::Reset => {
                self.quiet.store(true, Ordering::SeqCst);
                let _ = self.upstream.shutdown(Shutdown::Both);
            }
        }
        if let Some(answers) = self.answers.take() {
            let _ = answers.join();
        }
        lock(&self.shared.live).remove(&self.id);
        // Dropping `self` closes the last descriptors of both sockets.
    }
}

/// The reason phrase of a status the proxy answers.
fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected Fault",
    }
}

// ---------------------------------------------------------------------------------------------
// dockerd

/// Debian's `dockerd` (20.10) with its own containerd, data, state and socket in a temporary
/// directory under /tmp (a unix socket's path has at most 108 bytes), no bridge and no
/// iptables rules: containers run with `--network none`.
pub struct Dockerd {
    dir: Option<tempfile::TempDir>,
    process: Process,
    client: PathBuf,
}

impl Dockerd {
    /// Starts dockerd and waits (60 seconds at most) until `docker version` reaches it. An
    /// error, with the end of dockerd's log, when it cannot start here.
    pub fn start() -> Result<Dockerd, String> {
        let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"].into_iter().map(PathBuf::from).find(|p| p.is_file());
        let dockerd = dockerd.ok_or("dockerd is not installed")?;
        let dir = tempfile::Builder::new().prefix("kiln-dockerd-").tempdir_in("/tmp").map_err(|e| e.to_string())?;
        let d = dir.path();
        std::fs::write(d.join("daemon.json"), "{}\n").map_err(|e| e.to_string())?;
        std::fs::create_dir(d.join("client")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(dockerd);
        cmd.arg("--config-file").arg(d.join("daemon.json"));
        cmd.args(["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"]);
        cmd.args(["--storage-driver", "vfs"]).arg("--data-root").arg(d.join("data"));
        cmd.arg("--exec-root").arg(d.join("exec")).arg("--pidfile").arg(d.join("docker.pid"));
        cmd.arg("-H").arg(format!("unix://{}", d.join("docker.sock").display()));
        let process = spawn_logged(&mut cmd, &d.join("dockerd.log"));
        let daemon = Dockerd { dir: Some(dir), process, client: docker_client() };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    /// The `docker` client (Debian's 20.10 one when installed), talking to this daemon only,
    /// with a client configuration directory of its own.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(&self.client);
        c.env("DOCKER_CONFIG", self.path().join("client")).arg("-H").arg(self.host());
        c
    }

    /// `unix://DIR/docker.sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.path().join("docker.sock").display())
    }

    /// dockerd's log so far (containerd's messages included).
    pub fn log(&self) -> String {
        read_lossy(&self.path().join("dockerd.log"))
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("dockerd's directory").path()
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.exited() {
                return Err(format!("dockerd exited ({status}):\n{}", tail(&self.log(), 30)));
            }
            let o = self.docker().args(["version", "--format", "{{.Server.Version}}"]).output();
            if o.is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("dockerd did not answer in 60 s:\n{}", tail(&self.log(), 30)));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Debian's docker client, which speaks dockerd 20.10's API, else any `docker` (a newer client
/// negotiates the API version down).
fn docker_client() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() { debian } else { require("docker") }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let containerd = std::fs::read_to_string(dir.path().join("exec/containerd/containerd.pid")).unwrap_or_default();
        self.process.stop(Duration::from_secs(20));
        // dockerd stops its containerd; after a SIGKILL it may be left behind.
        if let Ok(pid) = containerd.trim().parse::<u32>() {
            let cmdline = read_lossy(Path::new(&format!("/proc/{pid}/cmdline")));
            let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
            if let Some(pid) = pid.filter(|_| cmdline.contains(&dir.path().display().to_string())) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        unmount_under(dir.path());
        // Dropping `dir` removes it: vfs keeps layers as plain directories.
    }
}

/// Unmounts whatever is mounted under `dir` (dockerd mounts its data root on itself, and
/// leaves that behind when killed), the deepest first.
fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == prefix || p.starts_with(&(prefix.clone() + "/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

// ---------------------------------------------------------------------------------------------
// podman

/// `podman` with everything it keeps under `root` (images and containers in `root/root`,
/// state in `root/run`, libpod's temporary files in `root/tmp`), the vfs storage driver,
/// cgroupfs instead of systemd, events in a file, and runc.
pub fn podman_cmd(root: &Path) -> Command {
    let mut c = Command::new(require("podman"));
    c.arg("--root").arg(root.join("root")).arg("--runroot").arg(root.join("run"));
    c.arg("--tmpdir").arg(root.join("tmp"));
    c.args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
    c.args(["--runtime", "runc"]);
    c
}

/// The process limit podman 4.3 (as root) sets on itself, so the most a container can have.
const PODMAN_NPROC: u64 = 32768;

/// `podman run --rm --network none` of the image `name` in the OCI layout `layout`; append the
/// command to run. The open-file limit is this process's hard one and the process limit 32768:
/// podman's defaults are higher than podman's own limits, and runc cannot raise a limit
/// without CAP_SYS_RESOURCE, which a container like this machine lacks. The layout is named
/// by a path relative to its parent (the command runs there), because podman 4.3 names the
/// image after the layout's path, which must then be lowercase.
pub fn podman_run(root: &Path, layout: &Path, name: &str) -> Command {
    let dir_name = layout.file_name().expect("a layout directory").to_string_lossy().into_owned();
    assert_eq!(dir_name, dir_name.to_lowercase(), "podman wants a lowercase layout name: {}", layout.display());
    let mut c = podman_cmd(root);
    c.current_dir(layout.parent().expect("a layout's parent"));
    c.args(["run", "--rm", "--network", "none"]);
    let hard = |r| getrlimit(r).maximum.unwrap_or(1 << 20);
    c.arg("--ulimit").arg(format!("nofile={0}:{0}", hard(Resource::Nofile)));
    c.arg("--ulimit").arg(format!("nproc={0}:{0}", hard(Resource::Nproc).min(PODMAN_NPROC)));
    c.arg(format!("oci:{dir_name}:{name}"));
    c
}

// ---------------------------------------------------------------------------------------------
// Tiny images

/// A root filesystem with only `/bin/busybox` (Debian's static busybox), in `dir/rootfs`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("/bin/busybox (busybox-static)");
    dir.join("rootfs")
}

/// An OCI layout `dir/layout` whose image `name` has one layer holding `/bin/busybox`, made by
/// umoci.
pub fn busybox_layout(dir: &Path, name: &str) -> PathBuf {
    let layout = dir.join("layout");
    let image = format!("{}:{name}", layout.display());
    let umoci = require("umoci");
    run(Command::new(&umoci).arg("init").arg("--layout").arg(&layout));
    run(Command::new(&umoci).args(["new", "--image", &image]));
    run(Command::new(&umoci).args(["insert", "--image", &image]).arg(busybox_rootfs(dir).join("bin")).arg("/bin"));
    layout
}

/// A `docker load` archive at `path` of one image tagged `tag`: a manifest.json, a config and
/// one layer holding `/bin/busybox`.
pub fn busybox_docker_archive(path: &Path, tag: &str) {
    use sha2::{Digest, Sha256};
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let mut layer = tar::Builder::new(Vec::new());
    append(&mut layer, "bin/", tar::EntryType::Directory, 0o755, &[]);
    append(&mut layer, "bin/busybox", tar::EntryType::Regular, 0o755, &busybox);
    let layer = layer.into_inner().unwrap();
    let diff_id = format!("{:x}", Sha256::digest(&layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/bin/busybox", "echo", "hi"] },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{:x}.json", Sha256::digest(&config));
    let layer_name = format!("{diff_id}/layer.tar");
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": [tag], "Layers": [layer_name] }]);
    let mut archive = tar::Builder::new(File::create(path).unwrap());
    append(&mut archive, "manifest.json", tar::EntryType::Regular, 0o644, &serde_json::to_vec(&manifest).unwrap());
    append(&mut archive, &config_name, tar::EntryType::Regular, 0o644, &config);
    append(&mut archive, &format!("{diff_id}/"), tar::EntryType::Directory, 0o755, &[]);
    append(&mut archive, &layer_name, tar::EntryType::Regular, 0o644, &layer);
    archive.finish().unwrap();
}

fn append<W: Write>(b: &mut tar::Builder<W>, path: &str, kind: tar::EntryType, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, path, data).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Tests

fn skopeo_copy(from: &str, to: &str, extra: &[&str]) -> std::process::Output {
    let mut c = Command::new(require("skopeo"));
    c.args(["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"]).args(extra).args([from, to]);
    c.output().expect("run skopeo")
}

fn assert_ok(o: &std::process::Output, what: &str) {
    assert!(o.status.success(), "{what} failed ({:?}):\n{}\n{}", o.status, stdout(o), stderr(o));
}

#[test]
fn registry_takes_a_skopeo_push_and_counts_uploads_and_mounts() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = busybox_layout(tmp.path(), "bb");
    let mut registry = Registry::start();
    let src = format!("oci:{}:bb", layout.display());
    let o = skopeo_copy(&src, &format!("docker://{}/kiln/bb:v1", registry.addr()), &[]);
    assert_ok(&o, "skopeo copy to the registry");
    assert_eq!((registry.completed_blob_uploads(), registry.manifest_puts()), (2, 1), "{}", registry.log());
    let o = skopeo_copy(
        &format!("docker://{}/kiln/bb:v1", registry.addr()),
        &format!("docker://{}/other/bb:v1", registry.addr()),
        &[],
    );
    assert_ok(&o, "skopeo copy between repositories");
    assert!(registry.mounts() >= 1, "no mount:\n{}", registry.log());
    assert!(registry.storage().join("docker/registry/v2/repositories/kiln/bb").is_dir());
    registry.stop();
    registry.stop();
    assert!(!registry.is_running());
    assert!(http(&registry.addr(), "GET", "/v2/", b"").is_err(), "the registry still answers");
}

#[test]
fn registry_with_auth_wants_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = busybox_layout(tmp.path(), "bb");
    let registry = Registry::start_with_auth("kiln", "s3cret");
    assert_eq!(http(&registry.addr(), "GET", "/v2/", b"").unwrap().status, 401);
    let (src, dest) = (format!("oci:{}:bb", layout.display()), format!("docker://{}/kiln/bb:v1", registry.addr()));
    let o = skopeo_copy(&src, &dest, &["--dest-creds", "kiln:wrong"]);
    assert!(!o.status.success(), "a wrong password was taken:\n{}", registry.log());
    assert_ok(&skopeo_copy(&src, &dest, &["--dest-creds", "kiln:s3cret"]), "skopeo copy with credentials");
    assert_eq!(registry.manifest_puts(), 1);
}

#[test]
fn registry_stops_from_another_thread() {
    let registry = Registry::start();
    let stop = registry.stopper();
    thread::spawn(stop).join().unwrap();
    assert!(!registry.is_running());
    assert!(http(&registry.addr(), "GET", "/v2/", b"").is_err());
}

#[test]
fn fault_proxy_answers_a_status_once_then_forwards() {
    let registry = Registry::start();
    let fault = Fault { method: "GET", path_contains: "/v2/", min_body: 0, action: Action::Status(500) };
    let proxy = FaultProxy::start(&registry.addr(), vec![fault]);
    let pings = || registry.requests().iter().filter(|e| e.path == "/v2/").count();
    let before = pings();
    let first = http(&proxy.addr(), "GET", "/v2/", b"").unwrap();
    assert_eq!(first.status, 500, "{first:?}");
    assert!(first.head.starts_with("HTTP/1.1 500 Internal Server Error"), "{first:?}");
    assert_eq!(http(&proxy.addr(), "GET", "/v2/", b"").unwrap().status, 200);
    assert_eq!(proxy.fired(), ["GET /v2/: answered 500"]);
    assert_eq!(pings(), before + 1, "the faulty request reached the registry");
}

/// Opens a blob upload through `addr`; returns the upload's path and query.
fn open_upload(addr: &str) -> String {
    let r = http(addr, "POST", "/v2/kiln/big/blobs/uploads/", b"").unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    let location = r.head.lines().find_map(|l| l.strip_prefix("Location: ")).expect("a Location").trim().to_string();
    location.split_once(addr).map_or(location.clone(), |(_, p)| p.to_string())
}

#[test]
fn fault_proxy_resets_a_large_upload_once() {
    use sha2::{Digest, Sha256};
    let registry = Registry::start();
    let fault =
        Fault { method: "PUT", path_contains: "/blobs/uploads/", min_body: 100_000, action: Action::ResetMidBody };
    let proxy = FaultProxy::start(&registry.addr(), vec![fault]);
    let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256%3A{:x}", Sha256::digest(&blob));
    let put = |upload: &str| http(&proxy.addr(), "PUT", &format!("{upload}&digest={digest}"), &blob);
    let cut = put(&open_upload(&proxy.addr()));
    let kind = cut.expect_err("the cut upload got an answer").kind();
    assert!(matches!(kind, io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe), "{kind:?}");
    let done = put(&open_upload(&proxy.addr())).unwrap();
    assert_eq!(done.status, 201, "{done:?}\n{}", registry.log());
    assert_eq!(registry.completed_blob_uploads(), 1);
    let fired = proxy.fired();
    assert!(fired.len() == 1 && fired[0].contains("reset after 500000 of 1000000"), "{fired:?}");
}

/// Reads one answer of a kept-alive connection: the head, then `Content-Length` bytes.
fn read_answer(reader: &mut BufReader<TcpStream>) -> HttpResponse {
    let head = read_head(reader).expect("a full head").expect("an answer");
    let r = parse_response(&head).unwrap();
    let length =
        r.head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_string));
    let mut body = vec![0; length.map_or(0, |l| l.trim().parse().unwrap())];
    reader.read_exact(&mut body).unwrap();
    HttpResponse { body, ..r }
}

#[test]
fn fault_proxy_frames_kept_alive_requests_by_their_length() {
    use sha2::{Digest, Sha256};
    let registry = Registry::start();
    let fault = Fault { method: "GET", path_contains: "/_catalog", min_body: 0, action: Action::Status(503) };
    let proxy = FaultProxy::start(&registry.addr(), vec![fault]);
    let upload = open_upload(&proxy.addr());
    let blob = vec![7u8; 10_000];
    let digest = format!("sha256%3A{:x}", Sha256::digest(&blob));
    let stream = TcpStream::connect(proxy.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let head =
        format!("PUT {upload}&digest={digest} HTTP/1.1\r\nHost: {}\r\nContent-Length: 10000\r\n\r\n", proxy.addr());
    writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&blob)).unwrap();
    assert_eq!(read_answer(&mut reader).status, 201, "{}", registry.log());
    writer.write_all(format!("GET /v2/_catalog HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr()).as_bytes()).unwrap();
    assert_eq!(read_answer(&mut reader).status, 503);
    assert_eq!(proxy.fired(), ["GET /v2/_catalog: answered 503"]);
    assert_eq!(http(&proxy.addr(), "GET", "/v2/_catalog", b"").unwrap().status, 200);
}

#[test]
fn fault_proxy_stalls_once() {
    let registry = Registry::start();
    let fault =
        Fault { method: "GET", path_contains: "/v2/", min_body: 0, action: Action::Stall(Duration::from_secs(1)) };
    let proxy = FaultProxy::start(&registry.addr(), vec![fault]);
    let started = Instant::now();
    assert!(http(&proxy.addr(), "GET", "/v2/", b"").is_err(), "a stalled request got an answer");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(http(&proxy.addr(), "GET", "/v2/", b"").unwrap().status, 200);
    assert_eq!(proxy.fired().len(), 1);
}

#[test]
fn skopeo_push_through_the_proxy_passes_after_a_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = busybox_layout(tmp.path(), "bb");
    let registry = Registry::start();
    let fault =
        Fault { method: "PATCH", path_contains: "/blobs/uploads/", min_body: 100_000, action: Action::ResetMidBody };
    let proxy = FaultProxy::start(&registry.addr(), vec![fault]);
    let (src, dest) = (format!("oci:{}:bb", layout.display()), format!("docker://{}/kiln/bb:v1", proxy.addr()));
    let o = skopeo_copy(&src, &dest, &["--retry-times", "2"]);
    let seen = ["connection reset by peer", "use of closed network connection", "broken pipe"];
    assert!(seen.iter().any(|s| stderr(&o).contains(s)), "skopeo saw no reset:\n{}", stderr(&o));
    if !o.status.success() {
        // Go reports a reset as a closed connection when its writer notices first, and skopeo
        // retries only the former: the second push must pass.
        assert_ok(&skopeo_copy(&src, &dest, &[]), "skopeo copy after the reset");
    }
    let fired = proxy.fired();
    assert!(fired.len() == 1 && fired[0].starts_with("PATCH /v2/kiln/bb/blobs/uploads/"), "{fired:?}");
    assert_eq!((registry.completed_blob_uploads(), registry.manifest_puts()), (2, 1), "{}", registry.log());
}

#[test]
fn dockerd_loads_and_runs_a_busybox_archive() {
    let daemon = match Dockerd::start() {
        Ok(d) => d,
        Err(why) => return eprintln!("skipping: dockerd cannot start here: {why}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("bb.tar");
    busybox_docker_archive(&archive, "kiln-test/busybox:latest");
    let loaded = run(daemon.docker().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains("kiln-test/busybox:latest"), "{loaded}");
    let echo = ["run", "--rm", "--network", "none", "kiln-test/busybox", "/bin/busybox", "echo", "hi"];
    let said = run(daemon.docker().args(echo));
    assert_eq!(said, "hi\n");
    let dir = daemon.path().to_path_buf();
    drop(daemon);
    assert!(!dir.exists(), "dockerd's directory is left behind");
}

#[test]
fn podman_runs_a_busybox_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = busybox_layout(tmp.path(), "bb");
    let root = tmp.path().join("podman");
    let said = run(podman_run(&root, &layout, "bb").args(["/bin/busybox", "echo", "hi"]));
    assert_eq!(said, "hi\n");
}
