//! What an image may contain: nothing from outside the recipe's directory, nothing a cache
//! entry planted beside (or in) kiln's cache says, none of kiln's own output, and a base's
//! links, modes and owners left as they were. Images run as a non-root user unless asked, and
//! user names must exist in the image. Checked with umoci, runc and skopeo.

use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn plan_fails(f: &Fixture, code: &str, at: &str) -> String {
    let o = kiln().current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).arg("plan").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(code), "expected {code}:\n{err}");
    assert!(err.contains(at), "expected the problem at {at}:\n{err}");
    let b = f.build();
    assert_eq!(b.status.code(), Some(2), "{}", stderr(&b));
    assert!(!f.out().exists(), "nothing is written for a bad recipe");
    err
}

fn recipe_with(lines: &str) -> String {
    format!("kiln 1\ndefaults {{\n    platforms \"linux/amd64\"\n}}\nimage \"a\" {{\n    base \"scratch\"\n{lines}}}\n")
}

#[test]
fn copy_sources_must_stay_inside_the_recipe_directory() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("outside.txt"), "secret\n").unwrap();
    let f = Fixture::new();
    std::fs::create_dir(f.path().join("p")).unwrap();
    let project = |rel: &str| f.path().join("p").join(rel);
    std::fs::write(project("inside.txt"), "fine\n").unwrap();
    std::os::unix::fs::symlink("/etc/ssl", project("etclink")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("outside.txt"), project("filelink")).unwrap();
    std::os::unix::fs::symlink("inside.txt", project("goodlink")).unwrap();
    let cases = [
        (format!("{}/outside.txt", outer.path().display()), "/o.txt"),
        ("../../../../../../../../../../etc/shadow".to_string(), "/s"),
        ("/etc/shadow".to_string(), "/s"),
        ("etclink".to_string(), "/etc/ssl/"),
        ("filelink".to_string(), "/f"),
    ];
    for (src, dest) in cases {
        std::fs::write(project("kiln.kdl"), recipe_with(&format!("    copy \"{src}\" \"{dest}\"\n"))).unwrap();
        let o = kiln().current_dir(project("")).arg("build").args(["--out", "out"]).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{src}: {err}");
        assert!(err.contains("kiln::recipe::source_outside") && err.contains("kiln.kdl:7:10"), "{src}: {err}");
        assert!(!project("out").exists(), "{src}: nothing written");
    }
    // A symlink to a file inside the project is followed; one inside a copied tree stays a link.
    std::fs::create_dir(project("tree")).unwrap();
    std::os::unix::fs::symlink("/etc/ssl", project("tree/ssl")).unwrap();
    let r = recipe_with("    copy \"goodlink\" \"/g.txt\"\n    copy \"tree\" \"/tree/\"\n");
    std::fs::write(project("kiln.kdl"), r).unwrap();
    let plan: Value = serde_json::from_str(&run(kiln().current_dir(project("")).args(["plan", "--json"]))).unwrap();
    let entries: Vec<&Value> = plan["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["entries"].as_array().unwrap())
        .collect();
    let find = |p: &str| entries.iter().find(|e| e["path"] == p).copied().unwrap_or_else(|| panic!("no {p}"));
    assert_eq!(find("/g.txt")["kind"], "file");
    assert_eq!(find("/tree/ssl")["kind"], "symlink");
    assert_eq!(find("/tree/ssl")["target"], "/etc/ssl");
}

/// A one-layer fixture; `content` is what its one file holds.
fn one_file(content: &str) -> Fixture {
    let f = Fixture::new();
    f.recipe(&recipe_with("    copy \"a.txt\" \"/a.txt\"\n")).write("a.txt", content);
    f
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    assert_eq!(files.len(), 1, "one record in {}", dir.display());
    files[0].clone()
}

fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

#[test]
fn a_planted_layer_cache_entry_cannot_change_an_image() {
    let good = one_file("the real file\n");
    let evil = one_file("planted by a pull request\n");
    let clean = summary(&good.build());
    summary(&evil.build());
    let (good_layers, evil_layers) = (good.cache_path().join("layers"), evil.cache_path().join("layers"));
    let record = only_file(&good_layers);
    let mut evil_record: Value = serde_json::from_slice(&std::fs::read(only_file(&evil_layers)).unwrap()).unwrap();
    copy_tree(&evil_layers.join("blobs/sha256/."), &good_layers.join("blobs/sha256"));
    let real: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    // Two lies: a consistent record of another layer, and the real diff_id with another blob.
    let mut lying = evil_record.clone();
    lying["diff_id"] = real["diff_id"].clone();
    lying["tar_size"] = real["tar_size"].clone();
    for planted in [evil_record.take(), lying] {
        std::fs::write(&record, serde_json::to_vec(&planted).unwrap()).unwrap();
        // No layout to find up to date: the layers come from the cache or are built again.
        std::fs::remove_dir_all(good.out()).unwrap();
        let o = kiln()
            .current_dir(good.path())
            .env("KILN_CACHE_DIR", good.cache_path())
            .args(["build", "--json", "--out", "out"])
            .output()
            .unwrap();
        let again = summary(&o);
        assert_eq!(again["index_digest"], clean["index_digest"], "the planted entry changed the image");
        assert_eq!(again["cached_layers"], 0);
        assert!(
            stderr(&o).contains("not using the cached layer"),
            "a rejected entry is said to be one: {}",
            stderr(&o)
        );
        let bundle = umoci_unpack(
            &single_platform(&good.out(), "a", "amd64", None, &good.path().join("single")),
            "a",
            &good.path().join("bundle"),
        );
        assert_eq!(std::fs::read_to_string(bundle.join("rootfs/a.txt")).unwrap(), "the real file\n");
        for d in ["single", "bundle"] {
            std::fs::remove_dir_all(good.path().join(d)).unwrap();
        }
    }

    // The same planted cache shipped inside the project (`.kiln-cache/` beside the recipe, the
    // old default) is never read: the default cache is the user's own.
    copy_tree(good.cache_path(), &good.path().join(".kiln-cache"));
    let home = tempfile::tempdir().unwrap();
    let o = kiln()
        .current_dir(good.path())
        .env_remove("KILN_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home.path())
        .args(["build", "-q", "--json", "--out", "out"])
        .output()
        .unwrap();
    assert_eq!(summary(&o)["index_digest"], clean["index_digest"]);
    assert!(home.path().join(".cache/kiln/layers").is_dir(), "the default cache is ~/.cache/kiln");
}

fn entry_paths(f: &Fixture) -> Vec<String> {
    let o = kiln().current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).args(["plan", "--json"]).output();
    let plan: Value = serde_json::from_slice(&o.unwrap().stdout).expect("plan JSON");
    let layers = plan["images"][0]["platforms"][0]["layers"].as_array().unwrap().clone();
    layers
        .iter()
        .flat_map(|l| l["entries"].as_array().unwrap().clone())
        .map(|e| e["path"].as_str().unwrap().into())
        .collect()
}

#[test]
fn copying_the_project_leaves_out_kilns_output_caches_git_and_ignored_files() {
    let f = Fixture::new();
    f.recipe(&recipe_with("    copy \".\" \"/app/\"\n"))
        .write("a.txt", "a\n")
        .write("x.log", "log\n")
        .write("keep.log", "kept\n")
        .write("sub/b.log", "log\n")
        .write("sub/c.txt", "c\n")
        .write(".git/HEAD", "ref: refs/heads/main\n")
        .write(".kiln-cache/layers/x", "old cache\n")
        .write(".kilnignore", "# logs stay out\n*.log\n!keep.log\nsub/*.log\n");
    summary(&f.build());
    assert!(f.out().join("oci-layout").is_file());
    // A cache asked for inside the project is left out too.
    let o = kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", f.path().join("in-tree-cache"))
        .args(["build", "-q", "--out", "out"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f.path().join("in-tree-cache/layers").is_dir());
    let o = kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", f.path().join("in-tree-cache"))
        .args(["plan", "--json"])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let paths: Vec<String> = plan["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["entries"].as_array().unwrap().clone())
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    for kept in ["/app/a.txt", "/app/keep.log", "/app/sub/c.txt", "/app/kiln.kdl"] {
        assert!(paths.iter().any(|p| p == kept), "{kept} missing from {paths:?}");
    }
    for gone in ["/app/x.log", "/app/sub/b.log", "/app/out", "/app/.git", "/app/.kiln-cache", "/app/in-tree-cache"] {
        assert!(!paths.iter().any(|p| p.starts_with(gone)), "{gone} copied: {paths:?}");
    }
    assert_eq!(entry_paths(&f).iter().filter(|p| p.starts_with("/app/out")).count(), 0);
    // A source that .kilnignore excludes, named on its own, is an error.
    f.recipe(&recipe_with("    copy \"x.log\" \"/x.log\"\n"));
    std::fs::remove_dir_all(f.out()).unwrap();
    plan_fails(&f, "kiln::plan::excluded_source", "kiln.kdl:7:10");
}

/// A usr-merged base made with umoci: `bin -> usr/bin`, a shell, `/tmp` 1777, `/home/app`
/// 0700 owned by 1000, and a passwd naming `app`.
fn umoci_base(dir: &Path) -> PathBuf {
    let layout = dir.join("base");
    let umoci = require("umoci");
    let l = layout.display().to_string();
    run(Command::new(&umoci).args(["init", "--layout", &l]));
    run(Command::new(&umoci).args(["new", "--image", &format!("{l}:latest")]));
    let bundle = dir.join("base-bundle");
    run(Command::new(&umoci).args(["unpack", "--image", &format!("{l}:latest"), &bundle.display().to_string()]));
    let root = bundle.join("rootfs");
    for d in ["usr/bin", "tmp", "home/app", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::copy(require("busybox"), root.join("usr/bin/sh")).unwrap();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(root.join("home/app"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(root.join("home/app"), Some(1000), Some(1000)).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    run(Command::new(&umoci).args(["repack", "--image", &format!("{l}:latest"), &bundle.display().to_string()]));
    layout
}

#[test]
fn an_oci_layout_base_keeps_its_links_modes_and_owners() {
    let f = Fixture::new();
    let base = umoci_base(f.path());
    f.recipe(&format!(
        "kiln 1\ndefaults {{\n    platforms \"linux/amd64\"\n}}\nimage \"a\" {{\n    base \"oci-layout:{}:latest\"\n    file \"/bin/tool\" \"#!/bin/sh\\necho tool ran\\n\" mode=0o755\n    file \"/tmp/note\" \"x\\n\"\n    file \"/home/app/greeting\" \"hi\\n\" uid=1000 gid=1000\n    entrypoint \"/bin/sh\" \"-c\" \"id -u; /bin/tool\"\n    user \"app\"\n}}\n",
        base.display()
    ));
    summary(&f.build());
    let work = tempfile::tempdir().unwrap();
    let single = single_platform(&f.out(), "a", "amd64", None, &work.path().join("single"));
    oci_validate(&single, "a");
    let bundle = umoci_unpack(&single, "a", &work.path().join("bundle"));
    let root = bundle.join("rootfs");
    assert_eq!(std::fs::read_link(root.join("bin")).unwrap(), PathBuf::from("usr/bin"), "bin stays a link");
    assert!(root.join("usr/bin/sh").is_file() && root.join("usr/bin/tool").is_file());
    let tmp = std::fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "/tmp keeps 1777");
    let home = std::fs::metadata(root.join("home/app")).unwrap();
    assert_eq!((home.uid(), home.gid(), home.permissions().mode() & 0o7777), (1000, 1000, 0o700));
    assert_eq!(runc_run(&bundle, "kiln-base-merge"), "1000\ntool ran\n");
}

fn config_user(layout: &Path, name: &str) -> Value {
    let o = run(Command::new(require("skopeo")).args([
        "--override-arch",
        "amd64",
        "inspect",
        "--config",
        &format!("oci:{}:{name}", layout.display()),
    ]));
    let config: Value = serde_json::from_str(&o).unwrap();
    config["config"]["User"].clone()
}

#[test]
fn images_run_as_non_root_unless_the_recipe_says_root() {
    let f = Fixture::new();
    let image = |name: &str, user: &str| {
        format!(
            "image \"{name}\" {{\n    base \"scratch\"\n    copy \"busybox\" \"/bin/busybox\" mode=0o755\n    entrypoint \"/bin/busybox\" \"id\"\n{user}}}\n"
        )
    };
    f.recipe(&format!(
        "kiln 1\ndefaults {{\n    platforms \"linux/amd64\"\n}}\n{}{}{}",
        image("plain", ""),
        image("root", "    user \"root\"\n"),
        image("zero", "    user 0\n")
    ));
    std::fs::copy(require("busybox"), f.path().join("busybox")).unwrap();
    summary(&f.build());
    assert_eq!(config_user(&f.out(), "plain"), "65532:65532");
    assert_eq!(config_user(&f.out(), "root"), "0");
    assert_eq!(config_user(&f.out(), "zero"), "0");
    let text = run(kiln().current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).arg("plan"));
    assert!(text.contains("user 65532:65532 (kiln's default: not root"), "{text}");
    assert!(text.contains("user 0 (set by the recipe)"), "{text}");
    let shown = run(kiln().arg("inspect").arg(f.out()));
    assert!(shown.contains("runs as 65532:65532 (the image config's User)"), "{shown}");
    assert!(shown.contains("runs as 0 (the image config's User)"), "{shown}");
    let work = tempfile::tempdir().unwrap();
    for (name, id) in [("plain", "uid=65532 gid=65532"), ("root", "uid=0 gid=0")] {
        let single = single_platform(&f.out(), name, "amd64", None, &work.path().join(format!("s-{name}")));
        let bundle = umoci_unpack(&single, name, &work.path().join(format!("b-{name}")));
        let out = runc_run(&bundle, &format!("kiln-user-{name}"));
        assert!(out.starts_with(id), "{name}: {out}");
    }
}

#[test]
fn a_user_name_the_image_cannot_resolve_is_a_recipe_error() {
    let f = Fixture::new();
    f.recipe(&recipe_with("    user \"nobody\"\n"));
    let err = plan_fails(&f, "kiln::recipe::unknown_user", "kiln.kdl:7:10");
    assert!(err.contains("has no /etc/passwd"), "{err}");
    f.recipe(&recipe_with("    file \"/etc/passwd\" \"app:x:10:10::/:/sbin/nologin\\n\"\n    user \"app:staff\"\n"));
    let err = plan_fails(&f, "kiln::recipe::unknown_user", "kiln.kdl:8:10");
    assert!(err.contains("group `staff`"), "{err}");
    for ok in
        ["    user \"1234:5678\"\n", "    file \"/etc/passwd\" \"app:x:10:10::/:/sbin/nologin\\n\"\n    user \"app\"\n"]
    {
        f.recipe(&recipe_with(ok));
        let o = kiln().current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).arg("plan").output().unwrap();
        assert!(o.status.success(), "{ok}: {}", stderr(&o));
    }
}

#[test]
fn file_names_that_are_not_utf8_are_refused_not_dropped() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new();
    f.recipe(&recipe_with("    copy \"names\" \"/names/\"\n"));
    std::fs::create_dir(f.path().join("names")).unwrap();
    std::fs::write(f.path().join("names").join(std::ffi::OsStr::from_bytes(b"caf\xe9")), "latin-1\n").unwrap();
    std::fs::write(f.path().join("names").join("caf\u{fffd}"), "utf-8\n").unwrap();
    let err = plan_fails(&f, "kiln::plan::non_utf8_name", "kiln.kdl:7:10");
    assert!(err.contains(&format!("{}", f.path().join("names").display())), "the directory is named: {err}");
}

fn unshare_build(f: &Fixture, disk: &Path) -> Output {
    let script = format!(
        "mount -t tmpfs -o size=256k tmpfs {d} && exec {kiln} build -q -f {r} --out {d}/out",
        d = disk.display(),
        kiln = env!("CARGO_BIN_EXE_kiln"),
        r = f.recipe_path().display()
    );
    Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("KILN_CACHE_DIR", f.cache_path())
        .output()
        .expect("run unshare")
}

#[test]
fn a_full_disk_names_the_write_not_a_read() {
    let f = Fixture::new();
    f.recipe(&recipe_with("    copy \"big\" \"/big\"\n"));
    // Incompressible bytes, so the layer cannot fit a 256 KiB disk.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    f.write("big", big);
    let disk = tempfile::tempdir().unwrap();
    let o = unshare_build(&f, disk.path());
    // miette wraps long messages at 100 columns: join the lines again.
    let err = stderr(&o).replace("\n  | ", " ");
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("cannot write") && !err.contains("cannot read"), "the failed write is named: {err}");
}

#[test]
fn a_rust_workspace_outside_the_recipe_directory_is_refused() {
    let f = Fixture::new();
    f.write("Cargo.toml", "[workspace]\nmembers = [\"svc\"]\nresolver = \"2\"\n")
        .write("svc/Cargo.toml", "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
        .write("svc/src/main.rs", "fn main() {}\n")
        .write("svc/kiln.kdl", recipe_with("    rust \"svc\"\n"));
    let o = kiln()
        .current_dir(f.path().join("svc"))
        .env("KILN_CACHE_DIR", f.cache_path())
        .args(["build", "--out", "out"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::recipe::source_outside") && err.contains("workspace"), "{err}");
    assert!(!f.path().join("svc/out").exists());
}

#[test]
fn exclude_patterns_and_kilnignore_leave_files_out_and_bad_patterns_are_named() {
    let f = Fixture::new();
    f.recipe(&recipe_with("    copy \"site\" \"/srv/\" {\n        exclude \"*.tmp\" \"drafts/\"\n        exclude \"!drafts/keep.md\"\n    }\n"))
        .write("site/index.html", "<p>hi</p>\n")
        .write("site/x.tmp", "tmp\n")
        .write("site/deep/y.tmp", "deeper, kept: * stays in one component\n")
        .write("site/drafts/a.md", "draft\n")
        .write("site/drafts/keep.md", "kept\n");
    let paths = entry_paths(&f);
    for kept in ["/srv/index.html", "/srv/deep/y.tmp", "/srv/drafts/keep.md"] {
        assert!(paths.iter().any(|p| p == kept), "{kept} missing from {paths:?}");
    }
    for gone in ["/srv/x.tmp", "/srv/drafts/a.md"] {
        assert!(!paths.iter().any(|p| p == gone), "{gone} copied: {paths:?}");
    }
    f.recipe(&recipe_with("    copy \"site\" \"/srv/\" {\n        exclude \"[z-\"\n    }\n"));
    plan_fails(&f, "kiln::recipe::exclude_pattern", "kiln.kdl:8:17");
    f.recipe(&recipe_with("    copy \"site\" \"/srv/\"\n")).write(".kilnignore", "*.tmp\n[oops\n");
    let err = plan_fails(&f, "kiln::plan::kilnignore", "kiln.kdl:7:10");
    assert!(err.contains(".kilnignore:2"), "the bad line is named: {err}");
}
