//! Shared helpers for the integration tests: run the real `kiln` binary on fixture recipes
//! and check what it wrote with tools nobody here wrote (skopeo, umoci, oci-image-tool, runc).
#![allow(dead_code)]

use rustix::process::{WaitId, WaitIdOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn kiln() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// The path of an outside tool; the test fails (not skips) when it is missing, because
/// `scripts/test` installs every tool the suite needs.
pub fn require(tool: &str) -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&paths).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]) {
        let p = dir.join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{tool}` is not installed: run ./scripts/test, which installs the tools the tests need");
}

/// A temporary directory holding a recipe and its source files, and an empty kiln cache of its
/// own (outside the project, as kiln's default cache is).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub cache: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let temp = |prefix| tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir");
        Fixture { dir: temp("kiln-test-"), cache: temp("kiln-test-cache-") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The fixture's kiln cache (`KILN_CACHE_DIR` of [`Fixture::build`]).
    pub fn cache_path(&self) -> &Path {
        self.cache.path()
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        self
    }

    pub fn write_mode(&self, rel: &str, content: impl AsRef<[u8]>, mode: u32) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        self.write(rel, content);
        std::fs::set_permissions(self.path().join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn recipe(&self, text: &str) -> &Self {
        self.write("kiln.kdl", text)
    }

    pub fn recipe_path(&self) -> PathBuf {
        self.path().join("kiln.kdl")
    }

    /// `kiln build -f kiln.kdl --out out --json -q`, run from the fixture directory.
    pub fn build(&self) -> Output {
        self.build_cmd().output().expect("run kiln")
    }

    /// The command [`Fixture::build`] runs.
    pub fn build_cmd(&self) -> Command {
        let mut c = kiln();
        c.current_dir(self.path())
            .env("KILN_CACHE_DIR", self.cache_path())
            .args(["build", "-q", "--json", "-f", "kiln.kdl", "--out", "out"]);
        c
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }
}

/// Runs `cmd` to its end; returns its output and the CPU time (user and system) the process
/// used. A time budget on that holds however many tests run beside it on a shared machine,
/// where wall time would count them too. Stdout and stderr go through files, so the child
/// never waits on a full pipe while this waits for its exit.
pub fn output_and_cpu_time(cmd: &mut Command) -> (Output, Duration) {
    let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Waits for the exit without reaping the child: until it is reaped, /proc keeps its times.
    let pid = rustix::process::Pid::from_child(&child);
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    while let Err(e) = rustix::process::waitid(WaitId::Pid(pid), options) {
        assert_eq!(e, rustix::io::Errno::INTR, "waitid {pid:?}: {e}");
    }
    let cpu = cpu_time(&std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap());
    let status = child.wait().unwrap();
    let read = |mut f: std::fs::File| {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut bytes).unwrap();
        bytes
    };
    (Output { status, stdout: read(out), stderr: read(err) }, cpu)
}

/// User plus system time of a `/proc/PID/stat` line (fields 14 and 15, in clock ticks).
fn cpu_time(stat: &str) -> Duration {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a /proc stat line") + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// `getconf CLK_TCK`: the unit of the times in `/proc` (100 on Linux as built today).
fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| run(Command::new("getconf").arg("CLK_TCK")).trim().parse().expect("getconf CLK_TCK"))
}

#[test]
fn cpu_time_counts_what_the_process_ran_not_the_clock() {
    let started = Instant::now();
    let (o, idle) = output_and_cpu_time(Command::new("sh").args(["-c", "sleep 1; echo slept; echo done >&2"]));
    assert!(o.status.success() && started.elapsed() >= Duration::from_secs(1));
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("slept\n", "done\n"));
    assert!(idle < Duration::from_millis(500), "a second asleep counted as {idle:?} of CPU time");
    let busy = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exit 3";
    let (o, spent) = output_and_cpu_time(Command::new("sh").args(["-c", busy]));
    assert_eq!(o.status.code(), Some(3));
    assert!(spent >= Duration::from_millis(50), "a busy loop counted as {spent:?} of CPU time");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns the parsed `--json` summary.
pub fn summary(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "kiln failed ({:?}):\n{}", o.status, stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{}", stdout(o)))
}

/// Runs a command, asserting success; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed ({:?}):\n{}\n{}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// `skopeo inspect --raw oci:DIR:NAME`, parsed.
pub fn skopeo_raw(layout: &Path, name: &str) -> serde_json::Value {
    let raw =
        run(Command::new(require("skopeo")).args(["inspect", "--raw", &format!("oci:{}:{name}", layout.display())]));
    serde_json::from_str(&raw).expect("skopeo prints JSON")
}

/// Copies one platform of a multi-platform image into a single-manifest layout with skopeo
/// (umoci and oci-image-tool read single manifests), returning that layout's path.
pub fn single_platform(layout: &Path, name: &str, arch: &str, variant: Option<&str>, dest: &Path) -> PathBuf {
    let mut c = Command::new(require("skopeo"));
    c.args(["--override-os", "linux", "--override-arch", arch]);
    if let Some(v) = variant {
        c.args(["--override-variant", v]);
    }
    c.args(["copy", "-q", &format!("oci:{}:{name}", layout.display()), &format!("oci:{}:{name}", dest.display())]);
    run(&mut c);
    dest.to_path_buf()
}

/// `umoci unpack` of a single-manifest layout into a runtime bundle; returns the bundle path.
pub fn umoci_unpack(layout: &Path, name: &str, bundle: &Path) -> PathBuf {
    run(Command::new(require("umoci")).args([
        "unpack",
        "--image",
        &format!("{}:{name}", layout.display()),
        &bundle.display().to_string(),
    ]));
    bundle.to_path_buf()
}

/// `oci-image-tool validate --type image` of a single-manifest layout.
pub fn oci_validate(layout: &Path, name: &str) {
    let out = run(Command::new(require("oci-image-tool")).args([
        "validate",
        "--type",
        "image",
        "--ref",
        &format!("name={name}"),
        &layout.display().to_string(),
    ]));
    assert!(out.contains("Validation succeeded"), "oci-image-tool did not validate {}:\n{out}", layout.display());
}

/// The layer plan kiln recorded for one platform of an image: the `dev.kiln.layers`
/// annotation of the platform's descriptor, else of the image index (read with `skopeo
/// inspect --raw`).
pub fn layer_keys(layout: &Path, name: &str, arch: &str) -> Vec<String> {
    let index = skopeo_raw(layout, name);
    let desc = index["manifests"]
        .as_array()
        .expect("an image index")
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} in {index}"));
    let keys = desc["annotations"]["dev.kiln.layers"]
        .as_str()
        .or(index["annotations"]["dev.kiln.layers"].as_str())
        .unwrap_or_else(|| panic!("no layer plan in {index}"));
    keys.split('\n').map(str::to_string).collect()
}

/// Runs an unpacked umoci bundle with `runc run` (no terminal) under a unique container id,
/// removes the container, asserts success and returns stdout.
///
/// runc's container names are global to the host, and every module of the test binary shares
/// one process id: the id carries a per-call count as well, so two calls never collide.
pub fn runc_run(bundle: &Path, id: &str) -> String {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = serde_json::Value::Bool(false);
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = format!("{id}-{}-{}", std::process::id(), CALLS.fetch_add(1, Ordering::Relaxed));
    let o = Command::new(require("runc"))
        .args(["run", "--bundle", &bundle.display().to_string(), &id])
        .output()
        .expect("run runc");
    let _ = Command::new(require("runc")).args(["delete", "--force", &id]).output();
    assert!(o.status.success(), "runc failed: {}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Copies a project tree, leaving out hidden entries, `target` and `out`.
pub fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" || name == "out" {
            continue;
        }
        if e.path().is_dir() {
            copy_project(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// Every file of a layout (index.json, oci-layout and each blob), by name: two layouts that
/// hold the same release compare equal.
pub fn layout_files(layout: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> =
        ["index.json", "oci-layout"].iter().map(|n| (n.to_string(), std::fs::read(layout.join(n)).unwrap())).collect();
    let mut blobs: Vec<_> =
        std::fs::read_dir(layout.join("blobs/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
    blobs.sort();
    out.extend(
        blobs.iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap())),
    );
    out
}

/// The repository's own directory (examples, templates, book).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's home as the `kiln` command finds it: `CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cargo"))
}

/// rustup's home as this process finds it, for a build whose HOME is elsewhere.
pub fn rustup_home() -> PathBuf {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".rustup"))
}

/// `n` bytes no compressor shrinks (xorshift), different for each seed.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
