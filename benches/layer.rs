//! Layer throughput: how long `kiln build` takes to turn a ~100 MB tree into one layer,
//! next to the shell pipeline that does the same work by hand.
//!
//! kiln reads every source file, hashes it, writes a deterministic tar, hashes the tar and
//! compresses it. The closest hand-made equivalent is GNU tar with fixed owners, order and
//! mtime piped into gzip or zstd, plus `sha256sum` over the same files; the bench times both
//! and prints kiln's time as a ratio of that baseline, so a regression in the layer writer
//! (buffering, hashing, compression settings) shows up as a number rather than a feeling.
//!
//! Run it with `scripts/bench` (or `cargo bench --locked --bench layer`). `BENCH_RUNS` sets the
//! number of timed runs per tool (default 3, after one warm-up run); the median is reported.
//! Without cargo bench's `--bench` flag (e.g. `cargo test --benches`) it runs once on a small
//! tree, as a smoke test.
//!
//! Needs GNU tar, gzip, zstd, sha256sum, find and xargs on `PATH`. The tree is generated from
//! a fixed seed under the system temp directory and removed at the end.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

const SEED: u64 = 0x6b69_6c6e_6265_6e63;
const MIB: u64 = 1024 * 1024;
/// Throughput is reported in decimal megabytes.
const MB: f64 = 1_000_000.0;
const TOOLS: &[&str] = &["sh", "tar", "gzip", "zstd", "sha256sum", "find", "xargs"];

/// How big a tree to generate.
struct Profile {
    dirs: usize,
    small_files: usize,
    medium_files: usize,
    /// One compressible and one incompressible file of each size.
    large_sizes: &'static [u64],
    /// Shell scripts and binary-like files, half each.
    executables: usize,
    runs: usize,
    warm_up: bool,
}

/// About 100 MB: the benchmark proper.
fn full_profile(runs: usize) -> Profile {
    Profile {
        dirs: 150,
        small_files: 5000,
        medium_files: 300,
        large_sizes: &[6 * MIB, 8 * MIB, 10 * MIB, 12 * MIB],
        executables: 4,
        runs,
        warm_up: true,
    }
}

/// A few hundred KB, one run: checks the bench still works, measures nothing.
fn smoke_profile() -> Profile {
    Profile {
        dirs: 8,
        small_files: 40,
        medium_files: 4,
        large_sizes: &[256 * 1024],
        executables: 2,
        runs: 1,
        warm_up: false,
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let profile = if bench_mode {
        full_profile(runs_from_env()?)
    } else {
        println!("smoke run (cargo bench passes --bench for the real one)");
        smoke_profile()
    };
    check_tools()?;
    let kiln = kiln_binary()?;
    let work = WorkDir::create()?;
    println!("kiln:  {}", kiln.display());
    println!("work:  {}", work.path.display());

    let started = Instant::now();
    let tree = generate_tree(&work.path.join("tree"), &profile)?;
    println!(
        "tree:  {} files in {} directories, {} bytes ({:.1} MB), generated in {:.1} s",
        tree.files,
        tree.dirs,
        tree.bytes,
        tree.bytes as f64 / MB,
        started.elapsed().as_secs_f64()
    );
    println!(
        "runs:  median of {} per tool{}\n",
        profile.runs,
        if profile.warm_up { ", after one warm-up run" } else { "" }
    );

    let results = measure_all(&work.path, &kiln, &profile)?;
    print_table(&results, tree.bytes);
    Ok(())
}

fn runs_from_env() -> Result<usize> {
    match std::env::var("BENCH_RUNS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("BENCH_RUNS must be a positive whole number, found `{v}`")),
        },
        Err(_) => Ok(3),
    }
}

// ---------------------------------------------------------------------------------------------
// Environment

fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|dir| is_executable(&dir.join(tool))))
}

/// Fails unless every external tool is installed and tar is GNU tar (for `--sort=name`).
fn check_tools() -> Result<()> {
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        return Err(format!("the layer bench needs {} on PATH; missing: {}", TOOLS.join(", "), missing.join(", ")));
    }
    let version =
        Command::new("tar").arg("--version").output().map_err(|e| format!("cannot run `tar --version`: {e}"))?;
    if !String::from_utf8_lossy(&version.stdout).contains("GNU tar") {
        return Err("the layer bench needs GNU tar (for --sort=name and --mtime)".into());
    }
    Ok(())
}

/// The kiln binary cargo built for this bench, or `target/<profile>/kiln` next to it.
fn kiln_binary() -> Result<PathBuf> {
    let path = match option_env!("CARGO_BIN_EXE_kiln") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot locate the bench executable: {e}"))?;
            // target/<profile>/deps/layer-<hash> -> target/<profile>/kiln
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .ok_or_else(|| format!("unexpected bench executable path {}", exe.display()))?;
            println!("note: CARGO_BIN_EXE_kiln unset, using the kiln next to the bench");
            profile_dir.join("kiln")
        }
    };
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(format!("kiln binary not found at {}; run `cargo build --release` first", path.display()))
    }
}

/// A scratch directory under the system temp dir, removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("kiln-layer-bench-{}", std::process::id()));
        if path.exists() {
            remove(&path)?;
        }
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(msg) = remove(&self.path) {
            eprintln!("warning: {msg}");
        }
    }
}

/// Removes a file or a directory tree; a missing path is not an error.
fn remove(path: &Path) -> Result<()> {
    let result = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    result.map_err(|e| format!("cannot remove {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Deterministic input

/// xorshift64*: tiny, fast, and the same sequence on every machine for a given seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "layer", "entry", "digest", "blob", "index", "config", "path", "root", "tree", "node", "size", "mode", "epoch",
    "hash", "buf", "len", "offset", "count", "total", "name", "key", "value", "item", "next", "state", "reader",
    "writer", "header", "stream", "source", "target", "plan", "image", "platform", "manifest", "cache", "chunk",
    "block", "limit", "error",
];
const TYPES: &[&str] =
    &["u64", "usize", "String", "&str", "&Path", "Vec<u8>", "Entry", "Layer", "Option<u32>", "Result<(), Error>"];
const EXTENSIONS: &[&str] = &["rs", "rs", "rs", "py", "js", "c", "h", "toml", "md", "txt"];

fn ident(rng: &mut Rng) -> String {
    let parts = rng.between(1, 3);
    let words: Vec<&str> = (0..parts).map(|_| *rng.pick(WORDS)).collect();
    words.join("_")
}

fn sentence(rng: &mut Rng, words: u64) -> String {
    let words: Vec<&str> = (0..words).map(|_| *rng.pick(WORDS)).collect();
    words.join(" ")
}

/// Text that looks like source code: nested blocks, statements, comments.
fn source_text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 256);
    let mut depth = 0usize;
    while s.len() < len {
        let pad = "    ".repeat(depth);
        let _ = match rng.below(10) {
            0 if depth == 0 => {
                depth += 1;
                let (f, a, t, r) = (ident(rng), ident(rng), rng.pick(TYPES), rng.pick(TYPES));
                writeln!(s, "\npub fn {f}({a}: {t}) -> {r} {{")
            }
            1 if depth < 4 => {
                depth += 1;
                let (a, n) = (ident(rng), rng.below(4096));
                writeln!(s, "{pad}if {a} > {n} {{")
            }
            2 | 3 if depth > 0 => {
                depth -= 1;
                writeln!(s, "{}}}", "    ".repeat(depth))
            }
            4 => {
                let words = rng.between(3, 12);
                writeln!(s, "{pad}// {}", sentence(rng, words))
            }
            5 => {
                let (f, a) = (ident(rng), ident(rng));
                writeln!(s, "{pad}return {f}(&{a});")
            }
            _ => {
                let (a, b, m, c, n) = (ident(rng), ident(rng), ident(rng), ident(rng), rng.below(1 << 16));
                writeln!(s, "{pad}let {a} = {b}.{m}({c}, {n});")
            }
        };
    }
    s.truncate(len);
    s.into_bytes()
}

/// JSON-like records, one per line.
fn json_text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 256);
    s.push_str("[\n");
    let mut id = 0u64;
    while s.len() < len {
        id += 1;
        let (name, t1, t2) = (ident(rng), rng.pick(WORDS), rng.pick(WORDS));
        let (size, on) = (rng.below(1 << 24), rng.below(2) == 1);
        let _ = writeln!(
            s,
            "  {{\"id\": {id}, \"name\": \"{name}\", \"size\": {size}, \"tags\": [\"{t1}\", \"{t2}\"], \"enabled\": {on}}},"
        );
    }
    s.truncate(len);
    s.into_bytes()
}

/// CSV-like rows under a header line.
fn csv_text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 256);
    s.push_str("id,name,path,size,ratio,updated\n");
    let mut id = 0u64;
    while s.len() < len {
        id += 1;
        let (name, dir, file) = (ident(rng), rng.pick(WORDS), ident(rng));
        let (size, ratio) = (rng.below(1 << 30), rng.below(10_000) as f64 / 100.0);
        let (day, hour) = (rng.between(1, 28), rng.below(24));
        let _ = writeln!(s, "{id},{name},/{dir}/{file}.dat,{size},{ratio:.2},2024-03-{day:02}T{hour:02}:00:00Z");
    }
    s.truncate(len);
    s.into_bytes()
}

/// Log lines from a handful of templates: large, but compresses well.
fn log_text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 256);
    let mut second = 0u64;
    while s.len() < len {
        second += rng.below(3);
        let (h, m, sec) = (second / 3600 % 24, second / 60 % 60, second % 60);
        let level = *rng.pick(&["INFO", "INFO", "INFO", "DEBUG", "WARN"]);
        let (module, what) = (rng.pick(WORDS), rng.pick(WORDS));
        let _ = writeln!(
            s,
            "2024-03-01T{h:02}:{m:02}:{sec:02}Z {level} kiln::{module}: wrote {what} entry ({} bytes)",
            rng.below(100_000)
        );
    }
    s.truncate(len);
    s.into_bytes()
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    rng.fill(&mut buf);
    buf
}

/// Something shaped like a compiled binary: random code, zero padding and repeated tables.
fn binary_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    const BLOCK: usize = 4096;
    let mut buf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    buf.resize(len, 0);
    let table: Vec<u8> = (0..=255u8).collect();
    for block in buf[8..].chunks_mut(BLOCK) {
        match rng.below(4) {
            0 | 1 => rng.fill(block),
            2 => {
                for (i, b) in block.iter_mut().enumerate() {
                    *b = table[i % table.len()];
                }
            }
            _ => {} // zero padding
        }
    }
    buf
}

fn shell_script(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::from("#!/bin/sh\nset -eu\n");
    while s.len() < len {
        let (a, b, c) = (ident(rng), rng.pick(WORDS), rng.below(100));
        let _ = writeln!(
            s,
            "{a}=\"${{{a}:-/var/lib/{b}}}\"\n[ -d \"${a}\" ] || mkdir -p \"${a}\"\necho \"{b} {c}\" >> \"${a}/log\""
        );
    }
    s.truncate(len);
    s.into_bytes()
}

#[derive(Default)]
struct TreeStats {
    files: usize,
    dirs: usize,
    bytes: u64,
}

impl TreeStats {
    fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
        self.files += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn mkdir(&mut self, path: &Path) -> Result<()> {
        std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.dirs += 1;
        Ok(())
    }
}

/// Relative directories forming a random tree up to six levels deep; the first is the root.
fn directory_tree(rng: &mut Rng, count: usize) -> Vec<PathBuf> {
    const MAX_DEPTH: usize = 6;
    let mut dirs = vec![PathBuf::new()];
    while dirs.len() <= count {
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        if parent.components().count() < MAX_DEPTH {
            let name = format!("{}_{}", rng.pick(WORDS), dirs.len());
            dirs.push(parent.join(name));
        }
    }
    dirs
}

/// Writes the whole input tree under `root`: src/ (small text files in nested directories),
/// data/ (medium JSON and CSV), assets/ (large files) and bin/ (executables).
fn generate_tree(root: &Path, p: &Profile) -> Result<TreeStats> {
    let mut rng = Rng::new(SEED);
    let mut stats = TreeStats::default();

    let src = root.join("src");
    let dirs = directory_tree(&mut rng, p.dirs);
    for d in &dirs {
        stats.mkdir(&src.join(d))?;
    }
    for i in 0..p.small_files {
        let dir = src.join(rng.pick(&dirs));
        let ext = *rng.pick(EXTENSIONS);
        let len = rng.between(200, 4096) as usize;
        let name = format!("{}_{i}.{ext}", rng.pick(WORDS));
        stats.write(&dir.join(name), &source_text(&mut rng, len), 0o644)?;
    }

    let data = root.join("data");
    stats.mkdir(&data)?;
    for i in 0..p.medium_files {
        let len = rng.between(16 * 1024, 64 * 1024) as usize;
        let (name, bytes) = if i % 2 == 0 {
            (format!("records_{i}.json"), json_text(&mut rng, len))
        } else {
            (format!("table_{i}.csv"), csv_text(&mut rng, len))
        };
        stats.write(&data.join(name), &bytes, 0o644)?;
    }

    let assets = root.join("assets");
    stats.mkdir(&assets)?;
    for (i, &size) in p.large_sizes.iter().enumerate() {
        let size = size as usize;
        stats.write(&assets.join(format!("events_{i}.log")), &log_text(&mut rng, size), 0o644)?;
        stats.write(&assets.join(format!("payload_{i}.bin")), &random_bytes(&mut rng, size), 0o644)?;
    }

    let bin = root.join("bin");
    stats.mkdir(&bin)?;
    for i in 0..p.executables {
        let (name, bytes) = if i % 2 == 0 {
            let len = rng.between(8 * 1024, 32 * 1024) as usize;
            (format!("setup_{i}.sh"), shell_script(&mut rng, len))
        } else {
            let len = rng.between(256 * 1024, 3 * MIB / 2) as usize;
            (format!("tool_{i}"), binary_bytes(&mut rng, len))
        };
        stats.write(&bin.join(name), &bytes, 0o755)?;
    }
    Ok(stats)
}

fn recipe(compression: &str, level: u32) -> String {
    format!(
        "kiln 1\n\ndefaults {{\n    platforms \"linux/amd64\"\n    compression \"{compression}\" level={level}\n}}\n\nimage \"bench\" {{\n    base \"scratch\"\n    copy \"tree/\" \"/data/\"\n}}\n"
    )
}

fn write_recipe(work: &Path, compression: &str, level: u32) -> Result<PathBuf> {
    let path = work.join(format!("{compression}.kdl"));
    std::fs::write(&path, recipe(compression, level)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// One command to time, and what it writes (cleared before each run, measured after).
struct Case {
    label: &'static str,
    command: Box<dyn Fn() -> Command>,
    output: Option<PathBuf>,
}

struct Measured {
    label: &'static str,
    median: Duration,
    output_bytes: Option<u64>,
}

/// Single-quotes a path for `sh -c`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn shell(script: String) -> Box<dyn Fn() -> Command> {
    Box::new(move || {
        let mut c = Command::new("sh");
        c.arg("-c").arg(&script);
        c
    })
}

fn kiln_case(label: &'static str, kiln: &Path, recipe: PathBuf, out: PathBuf) -> Case {
    let (kiln, dir) = (kiln.to_path_buf(), out.clone());
    Case {
        label,
        command: Box::new(move || {
            let mut c = Command::new(&kiln);
            c.args(["build", "-q", "-f"]).arg(&recipe).arg("--out").arg(&dir);
            c
        }),
        output: Some(out),
    }
}

fn tar_case(label: &'static str, tree: &Path, compressor: &str, out: PathBuf) -> Case {
    let script = format!(
        "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - -C {} . | {compressor} > {}",
        quote(tree),
        quote(&out)
    );
    Case { label, command: shell(script), output: Some(out) }
}

fn sha_case(tree: &Path) -> Case {
    let script = format!("find {} -type f -print0 | xargs -0 sha256sum > /dev/null", quote(tree));
    Case { label: "sha256sum (find | xargs)", command: shell(script), output: None }
}

/// Runs a command once, failing with its stderr if it does not succeed.
fn run_once(case: &Case) -> Result<Duration> {
    if let Some(out) = &case.output {
        remove(out)?;
    }
    let mut cmd = (case.command)();
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let done = cmd.output().map_err(|e| format!("cannot start {}: {e}", case.label))?;
    let elapsed = start.elapsed();
    if !done.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}",
            case.label,
            done.status,
            String::from_utf8_lossy(&done.stderr).trim_end()
        ));
    }
    Ok(elapsed)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 { times[mid] } else { (times[mid - 1] + times[mid]) / 2 }
}

fn measure(case: &Case, p: &Profile, size_of: impl Fn(&Path) -> Result<u64>) -> Result<Measured> {
    if p.warm_up {
        run_once(case)?;
    }
    let times = (0..p.runs).map(|_| run_once(case)).collect::<Result<Vec<_>>>()?;
    let shown: Vec<String> = times.iter().map(|t| format!("{:.3}", t.as_secs_f64())).collect();
    println!("  {:<34} {} s", case.label, shown.join("  "));
    let output_bytes = match &case.output {
        Some(out) => Some(size_of(out)?),
        None => None,
    };
    Ok(Measured { label: case.label, median: median(times), output_bytes })
}

fn file_size(path: &Path) -> Result<u64> {
    path.metadata().map(|m| m.len()).map_err(|e| format!("cannot stat {}: {e}", path.display()))
}

/// Sums the `size` of every layer object in `kiln inspect --json` output. Layer descriptors
/// are flat objects carrying a layer media type, so no JSON parser is needed.
fn layer_sizes_in(json: &str) -> Option<u64> {
    let mut total = None;
    let mut rest = json;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let close = rest.find('}')?;
        let object = &rest[..close];
        if object.contains('{') || !object.contains("application/vnd.oci.image.layer.") {
            continue;
        }
        let after = &object[object.find("\"size\"")? + "\"size\"".len()..];
        let digits: String =
            after.trim_start_matches([' ', ':', '\n', '\t']).chars().take_while(char::is_ascii_digit).collect();
        *total.get_or_insert(0) += digits.parse::<u64>().ok()?;
    }
    total
}

/// Size of the layer blob in a kiln layout, as `kiln inspect --json` reports it.
fn kiln_layer_bytes(kiln: &Path, layout: &Path) -> Result<u64> {
    let out = Command::new(kiln)
        .args(["inspect", "--json"])
        .arg(layout)
        .output()
        .map_err(|e| format!("cannot run kiln inspect: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kiln inspect --json {} failed:\n{}",
            layout.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    layer_sizes_in(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "kiln inspect --json listed no layer with a size".to_string())
}

fn measure_all(work: &Path, kiln: &Path, p: &Profile) -> Result<Vec<Measured>> {
    let tree = work.join("tree");
    let gzip_recipe = write_recipe(work, "gzip", 6)?;
    let zstd_recipe = write_recipe(work, "zstd", 3)?;
    let layer_size = |out: &Path| kiln_layer_bytes(kiln, out);

    let gzip_kiln = kiln_case("kiln build (gzip level=6)", kiln, gzip_recipe, work.join("out-gzip"));
    let zstd_kiln = kiln_case("kiln build (zstd level=3)", kiln, zstd_recipe, work.join("out-zstd"));
    let gzip_tar = tar_case("tar | gzip -n -6", &tree, "gzip -n -6", work.join("tree.tar.gz"));
    let zstd_tar = tar_case("tar | zstd -3 -T1", &tree, "zstd -3 -T1 -q", work.join("tree.tar.zst"));
    let sha = sha_case(&tree);

    println!("per-run wall clock:");
    let results = vec![
        measure(&gzip_kiln, p, layer_size)?,
        measure(&gzip_tar, p, file_size)?,
        measure(&zstd_kiln, p, layer_size)?,
        measure(&zstd_tar, p, file_size)?,
        measure(&sha, p, file_size)?,
    ];
    println!();
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Report

fn row(out: &mut String, label: &str, secs: f64, input: u64, size: Option<u64>, ratio: Option<f64>) {
    let size = size.map_or(String::new(), |b| format!("{:.2}", b as f64 / MB));
    let ratio = ratio.map_or(String::new(), |r| format!("{r:.2}x"));
    let line = format!("{label:<38} {secs:>9.3} {:>9.1} {size:>10} {ratio:>10}", input as f64 / MB / secs);
    let _ = writeln!(out, "{}", line.trim_end());
}

/// Prints kiln's times next to the hand-made pipelines, grouped by compression.
fn print_table(results: &[Measured], input: u64) {
    let [gzip_kiln, gzip_tar, zstd_kiln, zstd_tar, sha] = results else {
        unreachable!("measure_all returns five results");
    };
    let sha_secs = sha.median.as_secs_f64();
    let mut t = String::new();
    let _ = writeln!(t, "{:<38} {:>9} {:>9} {:>10} {:>10}", "tool", "median s", "MB/s", "output MB", "kiln/base");
    let _ = writeln!(t, "{}", "-".repeat(80));
    for (kiln, tar, name) in [(gzip_kiln, gzip_tar, "gzip"), (zstd_kiln, zstd_tar, "zstd")] {
        let base = tar.median.as_secs_f64() + sha_secs;
        let k = kiln.median.as_secs_f64();
        row(&mut t, kiln.label, k, input, kiln.output_bytes, Some(k / base));
        row(&mut t, tar.label, tar.median.as_secs_f64(), input, tar.output_bytes, None);
        row(&mut t, &format!("baseline: tar | {name} + sha256sum"), base, input, None, None);
        let _ = writeln!(t);
    }
    row(&mut t, sha.label, sha_secs, input, None, None);
    let _ = writeln!(
        t,
        "\ninput {:.1} MB; MB/s is input bytes over median time; kiln/base above 1 means kiln is slower",
        input as f64 / MB
    );
    print!("{t}");
}
