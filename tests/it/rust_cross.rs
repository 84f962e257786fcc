//! Rust cross-compilation: `examples/hello-rust` built for all three platforms, unpacked with
//! umoci, and run: amd64 natively and under runc, arm64 under qemu-aarch64-static, arm/v7 under
//! qemu-arm-static. `file` and `readelf` confirm machine, static linking and stripping.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// A copy of examples/hello-rust in a temporary directory, with its own kiln cache.
struct Project {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new().prefix("kiln-rust-").tempdir().unwrap();
        copy_project(&repo_root().join("examples/hello-rust"), dir.path());
        Project { dir, cache: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn kiln(&self) -> Command {
        let mut c = kiln();
        c.current_dir(self.path()).env("KILN_CACHE_DIR", self.cache.path());
        c
    }

    fn build(&self) -> Output {
        self.kiln().args(["build", "-q", "--json", "--out", "out"]).output().unwrap()
    }
}

const PLATFORMS: [(&str, Option<&str>, &str); 3] =
    [("amd64", None, "x86_64"), ("arm64", None, "aarch64"), ("arm", Some("v7"), "arm")];

#[test]
fn three_platforms_build_check_and_run() {
    // The first build of the example in this test run (shared by the tests that need it).
    let built = crate::compiled::example("hello-rust");
    let s = &built.summary;
    let binaries = s["binaries"].as_array().unwrap();
    assert_eq!(binaries.len(), 3, "{s}");
    for b in binaries {
        assert!(b["stripped_bytes"].as_u64() < b["unstripped_bytes"].as_u64(), "stripping shrinks the binary: {b}");
        assert_eq!(b["cached"], false);
    }
    let work = tempfile::tempdir().unwrap();
    for (arch, variant, uname) in PLATFORMS {
        let single = single_platform(&built.project.join("out"), "hello-rust", arch, variant, &work.path().join(arch));
        oci_validate(&single, "hello-rust");
        let bundle = umoci_unpack(&single, "hello-rust", &work.path().join(format!("bundle-{arch}")));
        let bin = bundle.join("rootfs/usr/local/bin/hello-rust");
        let expected = format!(
            "hello from kiln on {uname} ({}-bit)\npi to ryu: 3.141592653589793\n",
            if arch == "arm" { 32 } else { 64 }
        );
        let output = match arch {
            "amd64" => run(&mut Command::new(&bin)),
            "arm64" => run(Command::new(require("qemu-aarch64-static")).arg(&bin)),
            _ => run(Command::new(require("qemu-arm-static")).arg(&bin)),
        };
        assert_eq!(output, expected, "{arch}");

        let file = run(Command::new(require("file")).arg("-b").arg(&bin));
        let machine = match arch {
            "amd64" => "x86-64",
            "arm64" => "ARM aarch64",
            _ => "ARM, EABI5",
        };
        assert!(file.contains(machine), "{arch}: {file}");
        assert!(file.contains("statically linked") || file.contains("static-pie linked"), "{arch}: {file}");
        assert!(file.contains(", stripped"), "{arch}: {file}");
        let sections = run(Command::new(require("readelf")).args(["-S", "-W"]).arg(&bin));
        assert!(!sections.contains(".symtab") && !sections.contains(".debug_"), "{arch}: {sections}");
        let program_headers = run(Command::new(require("readelf")).args(["-l", "-W"]).arg(&bin));
        assert!(!program_headers.contains("INTERP"), "{arch} needs no dynamic loader: {program_headers}");
    }

    // The amd64 image runs under runc as the recipe says (entrypoint, user 65532).
    let single = work.path().join("amd64");
    let bundle = work.path().join("bundle-runc");
    umoci_unpack(&single, "hello-rust", &bundle);
    let config: Value = serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 65532);
    let out = runc_run(&bundle, "kiln-rust");
    assert!(out.starts_with("hello from kiln on x86_64"), "{out}");
}

#[test]
fn identical_binaries_and_digest_from_two_directories() {
    // The first build of the example in this test run, and a second, elsewhere, from an
    // empty cache: two compiles.
    let first = &crate::compiled::example("hello-rust").summary;
    let b = Project::new();
    // Another HOME too; cargo and rustup keep their homes.
    let home = tempfile::tempdir().unwrap();
    let second = Command::new("sh")
        .current_dir(b.path())
        .env("KILN_CACHE_DIR", b.cache.path())
        .env("TZ", "America/St_Johns")
        .env("HOME", home.path())
        .env("CARGO_HOME", cargo_home())
        .env("RUSTUP_HOME", rustup_home())
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("-c")
        .arg(format!("umask 077 && exec '{}' build -q --json --out ../elsewhere-out", env!("CARGO_BIN_EXE_kiln")))
        .output()
        .unwrap();
    let second = summary(&second);
    let shas = |s: &Value| s["binaries"].as_array().unwrap().iter().map(|b| b["sha256"].clone()).collect::<Vec<_>>();
    assert_eq!(shas(first), shas(&second), "binaries differ between directories");
    assert_eq!(first["index_digest"], second["index_digest"]);
    let _ = std::fs::remove_dir_all(b.path().join("../elsewhere-out"));
}

#[test]
fn a_rebuild_with_nothing_changed_does_not_compile() {
    let p = Project::new();
    crate::compiled::seed("hello-rust", p.cache.path());
    let first = summary(&p.build());
    let again = summary(&p.build());
    assert_eq!(first["index_digest"], again["index_digest"]);
    assert!(again["binaries"].as_array().unwrap().iter().all(|b| b["cached"] == true), "{again}");
    // A changed source invalidates the cache.
    let main = p.path().join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap().replace("hello from", "greetings from");
    std::fs::write(&main, text).unwrap();
    let changed = summary(&p.build());
    assert!(changed["binaries"].as_array().unwrap().iter().all(|b| b["cached"] == false), "{changed}");
    assert_ne!(first["index_digest"], changed["index_digest"]);
}

#[test]
fn a_compile_error_is_reported_with_cargos_message() {
    let p = Project::new();
    std::fs::write(p.path().join("src/main.rs"), "fn main() {\n    let x: u32 = \"not a number\";\n}\n").unwrap();
    let o = p.build();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("kiln::toolchain::compile"), "{err}");
    assert!(err.contains("mismatched types") && err.contains("src/main.rs"), "cargo's message is shown:\n{err}");
    assert!(!p.path().join("out").exists(), "no image is written");
}

#[test]
fn a_missing_target_names_the_command_that_installs_it() {
    let p = Project::new();
    let recipe = std::fs::read_to_string(p.path().join("kiln.kdl")).unwrap().replace(
        "dest \"/usr/local/bin/hello-rust\"",
        "dest \"/usr/local/bin/hello-rust\"\n        target \"linux/arm64\" \"aarch64-unknown-linux-gnu_ilp32\"",
    );
    std::fs::write(p.path().join("kiln.kdl"), recipe).unwrap();
    let o = p.kiln().args(["plan"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("kiln::toolchain::missing_target"), "{err}");
    assert!(err.contains("rustup target add aarch64-unknown-linux-gnu_ilp32"), "{err}");
    assert!(err.contains("kiln.kdl:13:30]"), "points at the triple:\n{err}");
}

#[test]
fn plan_records_toolchain_flags_and_isolation() {
    let p = Project::new();
    let plan: Value = serde_json::from_str(&run(p.kiln().args(["plan", "--json"]))).unwrap();
    let builds = plan["rust"].as_array().unwrap();
    let triples: Vec<&str> = builds.iter().map(|b| b["triple"].as_str().unwrap()).collect();
    assert_eq!(&triples[..2], &["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]);
    assert!(triples[2].starts_with("armv7-unknown-linux-"), "{triples:?}");
    for b in builds {
        let flags: Vec<&str> = b["rustflags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        assert!(flags.contains(&"--remap-path-prefix=${workspace}=/kiln/src"), "{flags:?}");
        assert!(flags.contains(&"target-feature=+crt-static"), "{flags:?}");
        assert!(b["rustc"].as_str().unwrap().starts_with("rustc "), "{b}");
        assert!(b["network"].is_string());
        assert_eq!(b["source_files"], 4, "Cargo.toml, Cargo.lock, kiln.kdl, src/main.rs: {b}");
    }
    assert_eq!(builds[0]["linker"].as_str().unwrap().split(' ').next(), Some("rust-lld"));
}

#[test]
fn doctor_lists_every_platform() {
    let o = kiln().arg("doctor").output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "the test setup installs everything doctor checks:\n{out}");
    for p in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
        assert!(out.lines().any(|l| l.starts_with("ok") && l.contains(p)), "{p}:\n{out}");
    }
    // And the C compiler that crates with C code get on each.
    for (p, cc) in [
        ("linux/amd64", "C: zig cc 0.17.0 -target x86_64-linux-musl"),
        ("linux/arm64", "C: zig cc 0.17.0 -target aarch64-linux-musl"),
        ("linux/arm/v7", "C: arm-linux-gnueabihf-gcc"),
    ] {
        assert!(out.lines().any(|l| l.starts_with(&format!("ok       {p} ")) && l.contains(cc)), "{p}: {cc}\n{out}");
    }
    // Without the pinned zig, doctor says how to install it and fails.
    let rust = require("rustc").parent().unwrap().to_path_buf();
    assert!(!rust.join("zig-0.17.0").exists(), "zig is installed beside rustc: {}", rust.display());
    let path = format!("{}:/usr/bin:/bin", rust.display());
    let o = kiln().arg("doctor").env("PATH", path).output().unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("missing  linux/amd64 C: no zig is installed"), "{out}");
    assert!(out.contains("scripts/install-deps build"), "{out}");
}

#[test]
fn init_writes_a_recipe_for_the_cargo_project_here() {
    let p = Project::new();
    std::fs::remove_file(p.path().join("kiln.kdl")).unwrap();
    let out = run(p.kiln().arg("init"));
    assert!(out.contains("from template rust-scratch (hello-rust, program hello-rust)"), "{out}");
    let plan = run(p.kiln().arg("plan"));
    assert!(plan.contains("rust build") && plan.contains("hello-rust (bin hello-rust)"), "{plan}");
    let o = p.kiln().arg("init").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "an existing kiln.kdl is kept");
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
}
