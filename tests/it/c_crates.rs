//! Rust crates with C code in their build scripts (`tests/data/c-crates`: ring, zstd-sys,
//! libsqlite3-sys bundled), built for all three platforms with kiln's C toolchain (zig for the
//! musl targets, Debian's gcc for armv7 gnueabihf) and run: amd64 natively, arm64 under
//! qemu-aarch64-static, arm/v7 under qemu-arm-static. The build is reproducible across
//! directories, cargo homes, umasks and time zones, and the zig is part of the plan.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const PLATFORMS: [(&str, Option<&str>); 3] = [("amd64", None), ("arm64", None), ("arm", Some("v7"))];

fn project(at: &Path) -> PathBuf {
    copy_project(&repo_root().join("tests/data/c-crates"), at);
    at.to_path_buf()
}

fn run_binary(arch: &str, bin: &Path) -> String {
    match arch {
        "amd64" => run(&mut Command::new(bin)),
        "arm64" => run(Command::new(require("qemu-aarch64-static")).arg(bin)),
        _ => run(Command::new(require("qemu-arm-static")).arg(bin)),
    }
}

#[test]
fn crates_with_c_code_build_run_and_reproduce_on_three_platforms() {
    require("zig-0.17.0");
    let work = tempfile::tempdir().unwrap();
    let a = project(&work.path().join("a/c-crates"));
    let cache_a = tempfile::tempdir().unwrap();
    // zig's C library for the musl targets, as the first build of examples/hello-c compiled it.
    crate::compiled::seed_toolchains("hello-c", cache_a.path());
    let built = run(kiln()
        .current_dir(&a)
        .env("KILN_CACHE_DIR", cache_a.path())
        .args(["build", "-q", "--json", "--out", "out"]));
    let s: serde_json::Value = serde_json::from_str(&built).unwrap();
    assert_eq!(s["binaries"].as_array().unwrap().len(), 9, "{s}");
    for (arch, variant) in PLATFORMS {
        let single = single_platform(&a.join("out"), "c-crates", arch, variant, &work.path().join(arch));
        oci_validate(&single, "c-crates");
        let rootfs = umoci_unpack(&single, "c-crates", &work.path().join(format!("bundle-{arch}"))).join("rootfs");
        let bin = |name: &str| rootfs.join("usr/local/bin").join(name);
        assert_eq!(
            run_binary(arch, &bin("ring-demo")),
            "ring sha256(kiln) = cdfe9ad58b46226d63eb322dacd35f4f7ac38096180c87258c142e4bca9a3cf5\n",
            "{arch}: ring's C and assembly compute SHA-256 as sha256sum does"
        );
        // 22 bytes, as `zstd -19 --no-check` packs the same text.
        assert_eq!(run_binary(arch, &bin("zstd-demo")), "zstd 5000 bytes -> 22 bytes and back\n", "{arch}");
        let sqlite = run_binary(arch, &bin("sqlite-demo"));
        assert!(sqlite.starts_with("sqlite 3.") && sqlite.ends_with(" says 42\n"), "{arch}: {sqlite}");
        for name in ["ring-demo", "zstd-demo", "sqlite-demo"] {
            let program_headers = run(Command::new(require("readelf")).args(["-l", "-W"]).arg(bin(name)));
            assert!(!program_headers.contains("INTERP"), "{arch} {name} is static: {program_headers}");
            let sections = run(Command::new(require("readelf")).args(["-S", "-W"]).arg(bin(name)));
            assert!(!sections.contains(".symtab") && !sections.contains(".debug_"), "{arch} {name}: {sections}");
        }
    }

    // Again elsewhere: another directory, HOME and cargo home (crates fetched anew), umask and
    // time zone, and an empty kiln cache. The C objects must not remember any of them.
    let b = project(&work.path().join("elsewhere/deeper/c-crates"));
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cache_b = tempfile::tempdir().unwrap();
    // One platform again (armv7, whose C compiler is Debian's gcc, not zig): the three
    // compile alike, and languages:: rebuilds zig's elsewhere.
    let script =
        format!("umask 077 && exec '{}' build -q --json --platform linux/arm/v7 --out out", env!("CARGO_BIN_EXE_kiln"));
    let again = run(Command::new("sh")
        .args(["-c", &script])
        .current_dir(&b)
        .env("HOME", &home)
        .env("CARGO_HOME", home.join("cargo"))
        .env("RUSTUP_HOME", rustup_home())
        .env("TZ", "Asia/Kathmandu")
        .env("KILN_CACHE_DIR", cache_b.path()));
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    let armv7 = |s: &serde_json::Value| s["images"][0]["platforms"]["linux/arm/v7"].clone();
    assert!(armv7(&s).is_string(), "{s}");
    assert_eq!(armv7(&again), armv7(&s), "the same image from another directory and cargo home");
}

/// A zig on PATH as `zig-0.17.0` that prints `version`: a stand-in for the plan only.
fn fake_zig(dir: &Path, version: &str, salt: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let zig = dir.join("zig-0.17.0");
    std::fs::write(&zig, format!("#!/bin/sh\n# {salt}\necho {version}\n")).unwrap();
    std::fs::set_permissions(&zig, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

#[test]
fn the_zig_is_part_of_the_plan_and_another_version_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let p = project(&work.path().join("c-crates"));
    let plan = |path: &str| {
        kiln()
            .current_dir(&p)
            .env("PATH", path)
            .env("CARGO_HOME", cargo_home())
            .env("KILN_CACHE_DIR", work.path().join("cache"))
            .args(["plan", "-q", "--json"])
            .output()
            .unwrap()
    };
    let one = plan(&fake_zig(&work.path().join("zig-one"), "0.17.0", "one"));
    let two = plan(&fake_zig(&work.path().join("zig-two"), "0.17.0", "two"));
    let (one, two) = (stdout(&one), stdout(&two));
    let json: serde_json::Value = serde_json::from_str(&one).unwrap();
    let builds = json["rust"].as_array().unwrap();
    for b in builds {
        let cc = b["c_compiler"].as_str().unwrap();
        match b["triple"].as_str().unwrap() {
            t if t.ends_with("-musl") => assert!(cc.starts_with("zig cc 0.17.0 (sha256 "), "{t}: {cc}"),
            t => assert!(cc.starts_with("arm-linux-gnueabihf-gcc"), "{t}: {cc}"),
        }
    }
    assert_ne!(one, two, "another zig binary is another plan");
    let ids = |text: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["rust"].as_array().unwrap().iter().map(|b| format!("{} {}", b["triple"], b["id"])).collect()
    };
    let (ids_one, ids_two) = (ids(&one), ids(&two));
    for (x, y) in ids_one.iter().zip(&ids_two) {
        assert_eq!(x == y, x.contains("gnueabihf"), "only the zig-compiled steps change id: {x} / {y}");
    }

    let wrong = plan(&fake_zig(&work.path().join("zig-old"), "0.13.0", "old"));
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    let err = stderr(&wrong);
    assert!(err.contains("kiln::toolchain::missing_zig") && err.contains("not the zig 0.17.0"), "{err}");
}
