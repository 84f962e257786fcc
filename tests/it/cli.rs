//! The command line as a user meets it: filters, output modes and argument errors.

use crate::common::*;
use serde_json::Value;

fn fixture() -> Fixture {
    let f = Fixture::new();
    f.recipe(
        "kiln 1\nimage \"one\" {\n    base \"scratch\"\n    copy \"a.txt\" \"/a.txt\"\n}\nimage \"two\" {\n    base \"scratch\"\n    platforms \"linux/arm64\" \"linux/arm/v7\"\n    copy \"a.txt\" \"/srv/a.txt\"\n}\n",
    )
    .write("a.txt", "a\n");
    f
}

#[test]
fn platform_and_image_filters_select_what_is_built() {
    let f = fixture();
    let o = kiln()
        .current_dir(f.path())
        .args(["build", "--json", "--platform", "linux/arm/v7", "--image", "two"])
        .output()
        .unwrap();
    let s = summary(&o);
    assert_eq!(s["images"].as_array().unwrap().len(), 1);
    assert_eq!(s["images"][0]["name"], "two");
    let index = skopeo_raw(&f.out(), "two");
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["platform"]["variant"], "v7");
}

#[test]
fn a_platform_filter_applies_to_every_image() {
    let f = fixture();
    let s =
        summary(&kiln().current_dir(f.path()).args(["build", "--json", "--platform", "linux/arm64"]).output().unwrap());
    for image in s["images"].as_array().unwrap() {
        let platforms: Vec<&String> = image["platforms"].as_object().unwrap().keys().collect();
        assert_eq!(platforms, vec!["linux/arm64"], "{image}");
    }
}

#[test]
fn bad_filters_are_errors() {
    let f = fixture();
    let o = kiln().current_dir(f.path()).args(["build", "--image", "three"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no image named `three`") && stderr(&o).contains("one, two"), "{}", stderr(&o));
    let o = kiln().current_dir(f.path()).args(["plan", "--platform", "linux/s390x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown platform `linux/s390x`"), "{}", stderr(&o));
    assert!(!f.out().exists());
}

#[test]
fn plain_progress_lines_off_a_terminal_and_silence_with_quiet() {
    let f = fixture();
    let o = kiln().current_dir(f.path()).args(["build"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("kiln: writing") && err.contains("kiln: wrote layer"), "{err}");
    assert!(!err.contains('\u{1b}'), "no terminal escapes off a terminal: {err:?}");
    assert!(stdout(&o).contains("wrote out (index.json sha256:"), "{}", stdout(&o));
    let o = kiln().current_dir(f.path()).args(["build", "--quiet"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
}

#[test]
fn plan_json_is_the_documented_shape() {
    let f = fixture();
    let plan: Value = serde_json::from_str(&run(kiln().current_dir(f.path()).args(["plan", "--json"]))).unwrap();
    assert_eq!(plan["plan_format"], 1);
    let layer = &plan["images"][0]["platforms"][0]["layers"][0];
    let entry = layer["entries"].as_array().unwrap().iter().find(|e| e["path"] == "/a.txt").unwrap();
    assert_eq!(entry["kind"], "file");
    assert_eq!(entry["mode"], 0o644);
    assert_eq!(entry["source"], "a.txt");
    assert_eq!(
        entry["sha256"], "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7",
        "sha256 of \"a\\n\""
    );
    // Platforms without per-platform files share one layer id.
    let ids: Vec<&Value> =
        plan["images"][0]["platforms"].as_array().unwrap().iter().map(|p| &p["layers"][0]["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

#[test]
fn inspect_refuses_what_is_not_a_layout() {
    let f = fixture();
    let o = kiln().args(["inspect", &f.path().display().to_string()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("index.json"), "{}", stderr(&o));
}

#[test]
fn inspect_detects_a_corrupted_blob() {
    let f = fixture();
    summary(&f.build());
    let index: Value = serde_json::from_slice(&std::fs::read(f.out().join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = f.out().join("blobs/sha256").join(digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let o = kiln().args(["inspect", &f.out().display().to_string()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("has digest"), "{}", stderr(&o));
}

/// The entries of a `--help` text's argument and option lists that have no description.
fn undescribed(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut missing = Vec::new();
    let mut in_list = false;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') {
            in_list = line.ends_with("Options:") || line.ends_with("Arguments:");
            continue;
        }
        let entry = line.trim();
        if !in_list || !(entry.starts_with('-') || entry.starts_with('<') || entry.starts_with('[')) {
            continue;
        }
        // `  --flag <V>  Description`, or the description on the next, further indented line;
        // clap pads an entry without one with trailing spaces, which `trim` took off.
        let indent = line.len() - entry.len();
        let next_indented =
            lines.get(i + 1).is_some_and(|n| n.len() - n.trim_start().len() > indent + 4 && !n.trim().is_empty());
        if !entry.contains("  ") && !next_indented {
            missing.push(entry.to_string());
        }
    }
    missing
}

#[test]
fn every_option_has_a_description_and_fetch_offers_no_previous() {
    let commands = [
        "plan",
        "build",
        "lock",
        "fetch",
        "doctor",
        "init",
        "diff",
        "bundle",
        "apply",
        "inspect",
        "verify",
        "keygen",
        "sign",
        "verify-signature",
    ];
    let helps: Vec<(&str, String)> = commands.iter().map(|c| (*c, run(kiln().args([c, "--help"])))).collect();
    let mut missing: Vec<String> = undescribed(&run(kiln().arg("--help")));
    for (command, help) in &helps {
        missing.extend(undescribed(help).into_iter().map(|entry| format!("kiln {command}: {entry}")));
    }
    assert_eq!(missing, Vec::<String>::new(), "options without a description");
    for (command, help) in &helps {
        let offers_previous = help.contains("--previous");
        assert_eq!(offers_previous, *command == "plan" || *command == "build", "kiln {command} --help:\n{help}");
    }
    let o = kiln().args(["fetch", "--previous", "old"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "fetch refuses --previous: {}", stderr(&o));
}

/// The names in a directory, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn an_os_error_is_printed_once() {
    let f = Fixture::new();
    let o = kiln().current_dir(f.path()).args(["build", "-f", "/nonexistent.kdl"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("cannot read recipe /nonexistent.kdl"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(names(f.path()), Vec::<String>::new(), "nothing is written");

    // An --out kiln cannot create: its parent is a file.
    let f = fixture();
    let o = kiln().current_dir(f.path()).args(["build", "--out", "a.txt/out"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(f.path().join("a.txt")).unwrap(), "a\n");
    assert_eq!(names(f.path()), ["a.txt", "kiln.kdl"], "nothing is written");
}

#[test]
fn a_missing_recipe_suggests_kiln_init() {
    let f = Fixture::new();
    for command in ["plan", "build", "lock"] {
        let o = kiln().current_dir(f.path()).arg(command).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = stderr(&o);
        assert!(err.contains("kiln::cli::recipe_unreadable") && err.contains("cannot read recipe kiln.kdl"), "{err}");
        assert!(err.contains("help: run `kiln init` to write a starting kiln.kdl here"), "kiln {command}: {err}");
        assert_eq!(names(f.path()), Vec::<String>::new(), "nothing is written");
    }
}

/// Runs `kiln ARGS` in `dir` under `sh` with the given umask, as a user's shell would.
fn kiln_with_umask(dir: &std::path::Path, umask: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .current_dir(dir)
        .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_kiln")])
        .args(args)
        .output()
        .unwrap()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

#[test]
fn init_writes_files_with_the_mode_the_umask_gives() {
    for (umask, expected) in [("022", 0o644), ("027", 0o640)] {
        let f = Fixture::new();
        let o = kiln_with_umask(f.path(), umask, &["init", "--template", "prebuilt"]);
        assert!(o.status.success(), "umask {umask}: {}", stderr(&o));
        assert_eq!(mode(&f.recipe_path()), expected, "kiln.kdl under umask {umask}");
        assert_eq!(mode(&f.path().join(".gitignore")), expected, ".gitignore under umask {umask}");
        assert_eq!(names(f.path()), [".gitignore", "kiln.kdl"], "no temporary file is left");
        // A replaced recipe gets the mode a new file would, whatever the old one had.
        std::fs::set_permissions(f.recipe_path(), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let o = kiln_with_umask(f.path(), umask, &["init", "--template", "prebuilt", "--force"]);
        assert!(o.status.success(), "umask {umask}: {}", stderr(&o));
        assert_eq!(mode(&f.recipe_path()), expected, "replaced kiln.kdl under umask {umask}");
        assert_eq!(names(f.path()), [".gitignore", "kiln.kdl"], "no temporary file is left");
    }
}

#[test]
fn lock_writes_kiln_lock_with_the_mode_the_umask_gives() {
    // Needs the Debian mirror, as `kiln lock` does (one platform: one Packages index).
    let f = Fixture::new();
    f.recipe(
        "kiln 1\ndefaults {\n    platforms \"linux/amd64\"\n}\nimage \"a\" {\n    base \"distroless/static\"\n}\n",
    );
    let o = kiln_with_umask(f.path(), "027", &["lock"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&f.path().join("kiln.lock")), 0o640, "kiln.lock under umask 027");
    assert_eq!(names(f.path()), ["kiln.kdl", "kiln.lock"], "no temporary file is left");
}

#[test]
fn init_adds_out_to_the_gitignore_once() {
    let git = require("git");
    let f = Fixture::new();
    run(std::process::Command::new(&git).current_dir(f.path()).args(["init", "-q"]));
    let ignored = || {
        std::process::Command::new(&git).current_dir(f.path()).args(["check-ignore", "-q", "out/"]).status().unwrap()
    };
    assert!(!ignored().success(), "out/ is not ignored before kiln init");
    f.write(".gitignore", "target");
    let out = run(kiln().current_dir(f.path()).args(["init", "--template", "prebuilt"]));
    assert!(out.contains("added out/ to") && out.contains(".gitignore"), "{out}");
    assert_eq!(std::fs::read_to_string(f.path().join(".gitignore")).unwrap(), "target\nout/\n");
    assert!(ignored().success(), "git ignores kiln's output");
    let out = run(kiln().current_dir(f.path()).args(["init", "--template", "prebuilt", "--force"]));
    assert!(out.contains(".gitignore already ignores out/"), "{out}");
    assert_eq!(std::fs::read_to_string(f.path().join(".gitignore")).unwrap(), "target\nout/\n", "no line twice");

    let f = Fixture::new();
    let out = run(kiln().current_dir(f.path()).args(["init", "--template", "prebuilt"]));
    assert!(out.contains("created") && out.contains(".gitignore with out/"), "{out}");
    assert_eq!(std::fs::read_to_string(f.path().join(".gitignore")).unwrap(), "out/\n");
}

#[test]
fn a_failed_write_names_the_file_being_written() {
    // `ulimit -f 0` makes every write to a file fail (EFBIG, like a full disk's ENOSPC), with the
    // signal it would send ignored.
    let f = Fixture::new();
    let o = std::process::Command::new("sh")
        .current_dir(f.path())
        .args(["-c", "trap '' XFSZ; ulimit -f 0; exec \"$0\" init --template prebuilt", env!("CARGO_BIN_EXE_kiln")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let expected = format!("cannot write {}: File too large (os error 27)", f.recipe_path().display());
    assert!(err.contains(&expected), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert_eq!(names(f.path()), Vec::<String>::new(), "nothing is written, no temporary file is left");
}
