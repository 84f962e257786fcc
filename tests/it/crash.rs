//! Crash safety: `kiln build` and `kiln apply` killed with SIGKILL at random moments leave a
//! complete old or new layout at the output, the next run cleans up after them, builds into
//! one `--out` take turns, and what live runs are writing is never removed.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
    compression "gzip" level=9
}
image "app" {
    base "scratch"
    copy "data/" "/srv/data/"
    copy "more/" "/srv/more/"
    file "/etc/app.conf" "port = 8080\n"
}
"#;

/// splitmix64: a small seeded generator for file contents and kill delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8)).flat_map(|_| self.next().to_le_bytes()).take(n).collect()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The kill delays' seed: `KILN_CRASH_SEED`, else the clock; printed so a failure can be
/// repeated.
fn seed() -> u64 {
    let seed = std::env::var("KILN_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    eprintln!("kill delays from seed {seed} (KILN_CRASH_SEED={seed} repeats them)");
    seed
}

/// A recipe whose build takes around a second: incompressible files, gzip level 9.
fn slow_fixture(kb: usize) -> Fixture {
    let f = Fixture::new();
    f.recipe(RECIPE);
    let mut rng = Rng(7);
    for i in 0..4 {
        f.write(&format!("data/part{i}.bin"), rng.bytes(kb << 10));
        f.write(&format!("more/part{i}.bin"), rng.bytes(kb << 10));
    }
    f
}

fn build_cmd(f: &Fixture, out: &Path, cache: &Path) -> Command {
    let mut c = kiln();
    c.current_dir(f.path()).env("KILN_CACHE_DIR", cache).args(["build", "-q", "--json", "--out"]).arg(out);
    c
}

/// `sha256:…` of each file, by `sha256sum`.
fn sha256s(files: &[PathBuf]) -> Vec<String> {
    let out = run(Command::new(require("sha256sum")).args(files));
    out.lines().map(|l| format!("sha256:{}", l.split_whitespace().next().unwrap())).collect()
}

/// Checks that `layout` is complete: an `oci-layout` file, an `index.json` whose digest is one
/// of `allowed`, and every blob it reaches present with its size and digest. Returns the
/// index digest.
fn check_layout(layout: &Path, allowed: &[&str]) -> String {
    assert!(layout.join("oci-layout").is_file(), "{} has no oci-layout file", layout.display());
    let index_path = layout.join("index.json");
    assert!(index_path.is_file(), "{} has no index.json", layout.display());
    let digest = sha256s(std::slice::from_ref(&index_path)).remove(0);
    assert!(allowed.contains(&digest.as_str()), "{} has index.json {digest}, not one of {allowed:?}", layout.display());
    let index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut todo: Vec<Value> = index["manifests"].as_array().unwrap().clone();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    while let Some(d) = todo.pop() {
        let digest = d["digest"].as_str().unwrap().to_string();
        let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{} lacks {digest}: {e}", layout.display()));
        assert_eq!(Some(meta.len()), d["size"].as_u64(), "size of {digest}");
        let media = d["mediaType"].as_str().unwrap_or_default();
        if media.ends_with("index.v1+json") || media.ends_with("manifest.v1+json") {
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            todo.extend(v["manifests"].as_array().into_iter().flatten().cloned());
            todo.extend(v.get("config").cloned());
            todo.extend(v["layers"].as_array().into_iter().flatten().cloned());
        }
        seen.insert(digest, path);
    }
    let (names, paths): (Vec<String>, Vec<PathBuf>) = seen.into_iter().unzip();
    assert_eq!(sha256s(&paths), names, "blobs of {} whose bytes do not match their names", layout.display());
    digest
}

/// What tools nobody here wrote say of `layout`: skopeo reads the image index, and one
/// platform copied out validates with oci-image-tool.
fn check_with_tools(layout: &Path) {
    let index = skopeo_raw(layout, "app");
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(3), "{index}");
    let work = tempfile::tempdir().unwrap();
    let one = single_platform(layout, "app", "arm64", None, &work.path().join("one"));
    oci_validate(&one, "app");
}

/// Entries of `dir` other than `keep`: what a run left beside its output.
fn beside(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

fn copy_layout(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).unwrap();
    }
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// Starts `cmd`, kills it with SIGKILL after `delay` (unless it is done) and reaps it; true
/// when the kill is what ended it.
fn kill_after(cmd: &mut Command, delay: Duration) -> bool {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start kiln");
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap().signal() == Some(9)
}

fn timed(cmd: &mut Command) -> (Value, Duration) {
    let t = Instant::now();
    let o = cmd.output().unwrap();
    (summary(&o), t.elapsed())
}

/// The window kills are spread over: a bit more than the run takes.
fn window(d: Duration) -> u64 {
    (d.as_millis() as u64 * 6 / 5).max(20)
}

#[test]
fn killed_builds_and_applies_leave_the_old_or_the_new_layout_and_the_next_run_cleans_up() {
    let start = Instant::now();
    let f = slow_fixture(96);
    let caches = tempfile::tempdir().unwrap();
    let fresh = |i: &str| caches.path().join(i);
    let (v1_out, v2_out) = (f.path().join("v1"), f.path().join("v2"));
    let v1 =
        summary(&build_cmd(&f, &v1_out, &fresh("v1")).output().unwrap())["index_digest"].as_str().unwrap().to_string();
    f.write("more/part2.bin", Rng(8).bytes(96 << 10));
    let (s, took) = timed(&mut build_cmd(&f, &v2_out, &fresh("v2")));
    let v2 = s["index_digest"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    eprintln!("a clean build takes {took:?}");
    let mut rng = Rng(seed());
    let device = tempfile::tempdir().unwrap();
    let dev = device.path().join("layout");
    let (mut killed, mut old_left) = (0, 0);
    for i in 0..20 {
        copy_layout(&v1_out, &dev);
        let cache = fresh(&format!("kill{i}"));
        let delay = Duration::from_millis(rng.below(window(took)));
        killed += kill_after(&mut build_cmd(&f, &dev, &cache), delay) as usize;
        old_left += (check_layout(&dev, &[&v1, &v2]) == v1) as usize;
        if i % 8 == 0 {
            check_with_tools(&dev);
        }
        let again = summary(&build_cmd(&f, &dev, &cache).output().unwrap());
        assert_eq!(again["index_digest"].as_str(), Some(v2.as_str()), "the build after kill {i} ({delay:?})");
        check_layout(&dev, &[&v2]);
        assert_eq!(beside(device.path(), &["layout"]), Vec::<String>::new(), "left beside the output after kill {i}");
    }
    eprintln!("builds: {killed} of 20 killed before they were done, {old_left} of them before the swap");
    assert!(killed >= 5, "too few kills landed during a build ({killed})");

    let bundle = f.path().join("u.tar");
    run(kiln().arg("bundle").arg("--have").arg(&v1_out).arg("--want").arg(&v2_out).arg("-o").arg(&bundle));
    let apply = || {
        let mut c = kiln();
        c.args(["apply", "-q"]).arg(&bundle).arg("--to").arg(&dev);
        c
    };
    copy_layout(&v1_out, &dev);
    let t = Instant::now();
    run(&mut apply());
    let took = t.elapsed();
    eprintln!("a clean apply takes {took:?}");
    let (mut killed, mut old_left) = (0, 0);
    for i in 0..20 {
        copy_layout(&v1_out, &dev);
        let delay = Duration::from_millis(rng.below(window(took)));
        killed += kill_after(&mut apply(), delay) as usize;
        old_left += (check_layout(&dev, &[&v1, &v2]) == v1) as usize;
        if i % 10 == 0 {
            check_with_tools(&dev);
        }
        run(&mut apply());
        check_layout(&dev, &[&v2]);
        assert_eq!(beside(device.path(), &["layout"]), Vec::<String>::new(), "left beside the layout after kill {i}");
    }
    eprintln!(
        "applies: {killed} of 20 killed before they were done, {old_left} of them before the swap; all in {:?}",
        start.elapsed()
    );
    assert!(killed >= 5, "too few kills landed during an apply ({killed})");
}

#[test]
fn builds_started_at_once_into_one_output_both_succeed() {
    let f = slow_fixture(32);
    let caches = tempfile::tempdir().unwrap();
    let first = summary(&build_cmd(&f, &f.path().join("first"), &caches.path().join("first")).output().unwrap());
    let expected = first["index_digest"].as_str().unwrap().to_string();
    for round in 0..4 {
        // Each build with a cache of its own, so that both write their layers at the same time.
        let children: Vec<Child> = (0..2)
            .map(|i| {
                let cache = caches.path().join(format!("{round}-{i}"));
                build_cmd(&f, &f.out(), &cache).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: a concurrent build failed ({:?}):\n{}", o.status, stderr(&o));
            assert_eq!(summary(&o)["index_digest"].as_str(), Some(expected.as_str()));
        }
        check_layout(&f.out(), &[&expected]);
        let left = beside(f.path(), &["out", "first", "kiln.kdl", "data", "more"]);
        assert_eq!(left, Vec::<String>::new(), "round {round}");
    }
    check_with_tools(&f.out());
}

#[test]
fn a_build_into_an_output_another_build_is_writing_waits_for_it_then_writes() {
    let f = slow_fixture(96);
    f.write("second.kdl", RECIPE.replace("port = 8080", "port = 9090"));
    let caches = tempfile::tempdir().unwrap();
    let mut second = build_cmd(&f, &f.path().join("warm"), &caches.path().join("warm"));
    let expected = summary(&second.arg("-f").arg("second.kdl").output().unwrap())["index_digest"].clone();
    // The first build writes slowly (a cold cache); the second starts once the first's staging
    // directory exists, and would write quickly (a warm one).
    let first = build_cmd(&f, &f.out(), &caches.path().join("cold")).stdout(Stdio::piped()).spawn().unwrap();
    let staging_exists = || beside(f.path(), &[]).iter().any(|n| n.starts_with(".kiln-staging-"));
    let t = Instant::now();
    while !staging_exists() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut second = kiln();
    second.current_dir(f.path()).env("KILN_CACHE_DIR", caches.path().join("warm"));
    let second = second.args(["build", "--json", "-f", "second.kdl", "--out", "out"]).output().unwrap();
    let first_pid = first.id();
    let first = first.wait_with_output().unwrap();
    summary(&first);
    assert_eq!(summary(&second)["index_digest"], expected);
    let now = sha256s(&[f.out().join("index.json")]).remove(0);
    assert_eq!(Some(now.as_str()), expected.as_str(), "the second build did not write last");
    let waited = format!("kiln: waiting for another kiln (pid {first_pid}) writing out");
    assert!(stderr(&second).contains(&waited), "no `{waited}` in:\n{}", stderr(&second));
    check_layout(&f.out(), &[expected.as_str().unwrap()]);
    assert_eq!(beside(f.path(), &["out", "warm", "kiln.kdl", "second.kdl", "data", "more"]), Vec::<String>::new());
}

/// A helper process holding a flock on `file` (shared or exclusive) until it is killed:
/// util-linux `flock` on a descriptor of a shell that then becomes `sleep`.
struct Holder(Child);

impl Holder {
    fn new(file: &Path, mode: &str) -> Holder {
        let script =
            format!("exec 9<>\"$0\" && {} {mode} 9 && echo locked && exec sleep 30", require("flock").display());
        let mut child = Command::new("sh").arg("-c").arg(script).arg(file).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "locked", "flock did not take the lock on {}", file.display());
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Backdates `path` by two minutes, as if a run had died holding it a while ago.
fn age(path: &Path) {
    run(Command::new("touch").args(["-h", "-d", "2 minutes ago"]).arg(path));
}

#[test]
fn the_next_run_removes_what_dead_runs_left_and_keeps_what_live_runs_hold() {
    let f = Fixture::new();
    f.recipe(RECIPE).write("data/a.txt", "a\n").write("more/b.txt", "b\n");
    let cache = tempfile::tempdir().unwrap();
    let parent = f.path();
    // As a killed build leaves them: a staging directory with blobs and its lock, unlocked.
    let dead = parent.join(".kiln-staging-deadrun00001");
    std::fs::create_dir_all(dead.join("blobs/sha256")).unwrap();
    std::fs::write(dead.join("blobs/sha256/.tmpAbCdEf"), vec![7u8; 1 << 16]).unwrap();
    std::fs::write(parent.join(".kiln-staging-deadrun00001.lock"), "4194303\nout").unwrap();
    // A live run writing another output in the same directory.
    let live = parent.join(".kiln-staging-liverun00001");
    std::fs::create_dir_all(live.join("blobs/sha256")).unwrap();
    let live_lock = parent.join(".kiln-staging-liverun00001.lock");
    std::fs::write(&live_lock, "1\nother").unwrap();
    let _live = Holder::new(&live_lock, "-x");
    // The cache: a killed run's temporary files, and a kiln using the cache right now.
    let layers = cache.path().join("layers");
    std::fs::create_dir_all(layers.join(".kiln-strip1")).unwrap();
    std::fs::write(layers.join(".tmpStale1"), vec![1u8; 1 << 16]).unwrap();
    age(&layers.join(".tmpStale1"));
    age(&layers.join(".kiln-strip1"));
    let user = Holder::new(&cache.path().join(".lock"), "-s");

    let out = f.out();
    let first = summary(&build_cmd(&f, &out, cache.path()).output().unwrap());
    let digest = first["index_digest"].as_str().unwrap().to_string();
    check_layout(&out, &[&digest]);
    assert!(!dead.exists() && !parent.join(".kiln-staging-deadrun00001.lock").exists(), "the dead run's staging stays");
    assert!(live.is_dir() && live_lock.is_file(), "the live run's staging was removed");
    assert!(!parent.join(".out.kiln-lock").exists(), "the output lock stays after the build");
    assert!(layers.join(".tmpStale1").exists(), "temporary files removed while another kiln uses the cache");

    // Once no other kiln uses the cache, old temporary files go, young ones stay.
    drop(user);
    std::fs::write(layers.join(".tmpYoung1"), b"y").unwrap();
    summary(&build_cmd(&f, &out, cache.path()).output().unwrap());
    assert!(!layers.join(".tmpStale1").exists(), "a dead run's temporary file stays in the cache");
    assert!(!layers.join(".kiln-strip1").exists(), "a dead run's directory stays in the cache");
    assert!(layers.join(".tmpYoung1").exists(), "a temporary file just written was removed");
    assert!(live.is_dir() && live_lock.is_file(), "the live run's staging was removed");
    assert_eq!(std::fs::read_to_string(&live_lock).unwrap(), "1\nother", "the live run's lock was rewritten");
}
