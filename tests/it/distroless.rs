//! Distroless bases built from pinned Debian packages: `kiln lock` against the Debian mirror,
//! then images on every flavour for all three platforms, checked with umoci, openssl, runc,
//! qemu-user and dpkg-deb. Needs the Debian mirror once; `.deb`s are cached and verified.

use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// kiln's cache for this test run, shared by the tests (content-addressed and verified).
fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-distroless-cache")
}

/// One `kiln lock` covering every flavour and platform, made once per run.
fn lock() -> &'static str {
    static LOCK: OnceLock<String> = OnceLock::new();
    LOCK.get_or_init(|| {
        let f = Fixture::new();
        f.recipe(
            "kiln 1\nimage \"s\" { base \"distroless/static\"; }\nimage \"b\" { base \"distroless/base\"; }\nimage \"c\" { base \"distroless/cc\" libstdcxx=#true; }\n",
        );
        let o = kiln().current_dir(f.path()).arg("lock").output().unwrap();
        assert!(o.status.success(), "kiln lock: {}", stderr(&o));
        assert!(stdout(&o).contains("signature verified"), "the Release signature is checked: {}", stdout(&o));
        std::fs::read_to_string(f.path().join("kiln.lock")).unwrap()
    })
}

fn fixture(recipe: &str) -> Fixture {
    let f = Fixture::new();
    f.recipe(recipe).write("kiln.lock", lock());
    f
}

fn build(f: &Fixture) -> Value {
    summary(
        &kiln()
            .current_dir(f.path())
            .env("KILN_CACHE_DIR", cache())
            .args(["build", "-q", "--json", "--out", "out"])
            .output()
            .unwrap(),
    )
}

const PLATFORMS: [(&str, Option<&str>); 3] = [("amd64", None), ("arm64", None), ("arm", Some("v7"))];

fn layer_digests(layout: &Path, name: &str) -> Vec<String> {
    skopeo_raw(layout, name)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn static_base_holds_what_distroless_static_holds() {
    let f = fixture(
        "kiln 1\nimage \"app\" {\n    base \"distroless/static\"\n    file \"/etc/app.conf\" \"x = 1\\n\"\n}\n",
    );
    build(&f);
    let work = tempfile::tempdir().unwrap();
    let mut per_platform = Vec::new();
    for (arch, variant) in PLATFORMS {
        let single = single_platform(&f.out(), "app", arch, variant, &work.path().join(arch));
        oci_validate(&single, "app");
        per_platform.push(layer_digests(&single, "app"));
        let bundle = umoci_unpack(&single, "app", &work.path().join(format!("b-{arch}")));
        let root = bundle.join("rootfs");
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("root:x:0:0:")
                && passwd.contains("nobody:x:65534:65534:")
                && passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:"),
            "{passwd}"
        );
        let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
        assert!(group.contains("nonroot:x:65532:"), "{group}");
        let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
        assert_eq!((home.uid(), home.gid()), (65532, 65532));
        let tmp = std::fs::metadata(root.join("tmp")).unwrap();
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
        for file in [
            "etc/nsswitch.conf",
            "etc/os-release",
            "etc/protocols",
            "etc/services",
            "etc/mime.types",
            "usr/share/zoneinfo/Europe/Paris",
            "usr/share/zoneinfo/UTC",
        ] {
            assert!(root.join(file).exists(), "{arch}: {file} missing");
        }
        assert!(!root.join("usr/share/doc/tzdata/changelog.Debian.gz").exists(), "docs are left out");
        assert!(root.join("usr/share/doc/tzdata/copyright").exists(), "copyright files stay");
        // The CA bundle parses and holds every certificate the package ships.
        let certs = run(Command::new("sh").arg("-c").arg(format!(
            "{} crl2pkcs7 -nocrl -certfile '{}' | {} pkcs7 -print_certs -noout | grep -c '^subject='",
            require("openssl").display(),
            root.join("etc/ssl/certs/ca-certificates.crt").display(),
            require("openssl").display()
        )));
        let lock: Value = serde_json::from_str(lock()).unwrap();
        let ca = lock["packages"].as_array().unwrap().iter().find(|p| p["name"] == "ca-certificates").unwrap();
        let deb = cache().join("debs").join(format!("{}.deb", ca["sha256"].as_str().unwrap()));
        let shipped = run(Command::new("sh").arg("-c").arg(format!(
            "{} -c '{}' | grep -c 'usr/share/ca-certificates/.*\\.crt$'",
            require("dpkg-deb").display(),
            deb.display()
        )));
        assert_eq!(certs.trim(), shipped.trim(), "bundle certificates vs certificates in the .deb");
        assert!(shipped.trim().parse::<u32>().unwrap() > 100);

        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["process"]["user"]["uid"], 65532, "distroless runs as nonroot");
        assert!(
            config["process"]["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
        );
    }
    // One base layer (system files, CA certificates, time zones) and the recipe's file: both
    // the same on every architecture, so the same blobs on every platform.
    assert_eq!(per_platform[0].len(), 2, "{per_platform:?}");
    for layers in &per_platform[1..] {
        assert_eq!(layers, &per_platform[0], "platform-independent layers are shared");
    }
}

#[test]
fn static_base_is_small() {
    let f = fixture("kiln 1\nimage \"s\" {\n    base \"distroless/static\"\n}\n");
    build(&f);
    let report: Value =
        serde_json::from_str(&run(kiln().args(["inspect", "--json", &f.out().display().to_string()]))).unwrap();
    for p in report["images"][0]["platforms"].as_array().unwrap() {
        let bytes = p["total_bytes"].as_u64().unwrap();
        assert!(bytes <= 800_000, "{} distroless/static is {bytes} bytes compressed", p["platform"]);
    }
}

/// Compiles a small C program against glibc and libgcc_s with Debian's (cross) gcc.
fn c_binary(gcc: &str, out: &Path) {
    let src = out.with_extension("c");
    std::fs::write(&src, "#include <stdio.h>\n#include <gnu/libc-version.h>\nint main(void) { printf(\"hello from glibc %s\\n\", gnu_get_libc_version()); return 0; }\n").unwrap();
    run(Command::new(require(gcc))
        .args(["-O2", "-shared-libgcc", "-Wl,--no-as-needed", "-lgcc_s", "-o"])
        .arg(out)
        .arg(&src));
    let dynamic = run(Command::new(require("readelf")).arg("-d").arg(out));
    assert!(dynamic.contains("libgcc_s.so.1") && dynamic.contains("libc.so.6"), "{dynamic}");
}

#[test]
fn cc_base_runs_dynamically_linked_glibc_binaries() {
    let f = fixture(
        "kiln 1\nimage \"cc\" {\n    base \"distroless/cc\"\n    copy \"bin/{arch}/hello\" \"/usr/local/bin/hello\" mode=0o755\n    entrypoint \"/usr/local/bin/hello\"\n}\n",
    );
    for (arch, gcc) in [("amd64", "gcc"), ("arm64", "aarch64-linux-gnu-gcc"), ("arm", "arm-linux-gnueabihf-gcc")] {
        std::fs::create_dir_all(f.path().join(format!("bin/{arch}"))).unwrap();
        c_binary(gcc, &f.path().join(format!("bin/{arch}/hello")));
    }
    build(&f);
    let work = tempfile::tempdir().unwrap();
    for (arch, variant) in PLATFORMS {
        let single = single_platform(&f.out(), "cc", arch, variant, &work.path().join(arch));
        oci_validate(&single, "cc");
        let bundle = umoci_unpack(&single, "cc", &work.path().join(format!("b-{arch}")));
        let root = bundle.join("rootfs");
        let bin = root.join("usr/local/bin/hello");
        match arch {
            "arm64" => {
                let out = run(Command::new(require("qemu-aarch64-static")).arg("-L").arg(&root).arg(&bin));
                assert!(out.starts_with("hello from glibc 2."), "{out}");
            }
            "arm" => {
                let out = run(Command::new(require("qemu-arm-static")).arg("-L").arg(&root).arg(&bin));
                assert!(out.starts_with("hello from glibc 2."), "{out}");
            }
            _ => {
                let out = runc_run(&bundle, "kiln-cc");
                assert!(out.starts_with("hello from glibc 2."), "{out}");
            }
        }
    }
}

#[test]
fn recipe_files_keep_the_base_directories_modes() {
    let f = fixture(
        "kiln 1\nimage \"t\" {\n    base \"distroless/static\"\n    platforms \"linux/amd64\"\n    file \"/tmp/seed\" \"x\"\n    file \"/home/nonroot/.config\" \"y\"\n}\n",
    );
    build(&f);
    let work = tempfile::tempdir().unwrap();
    let single = single_platform(&f.out(), "t", "amd64", None, &work.path().join("l"));
    let root = umoci_unpack(&single, "t", &work.path().join("b")).join("rootfs");
    assert_eq!(std::fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
    assert_eq!((home.permissions().mode() & 0o7777, home.uid()), (0o700, 65532));
}

#[test]
fn base_flavour_holds_glibc_and_libssl() {
    let f = fixture("kiln 1\nimage \"b\" {\n    base \"distroless/base\"\n    platforms \"linux/arm64\"\n}\n");
    build(&f);
    let work = tempfile::tempdir().unwrap();
    let single = single_platform(&f.out(), "b", "arm64", None, &work.path().join("l"));
    let root = umoci_unpack(&single, "b", &work.path().join("b")).join("rootfs");
    assert!(root.join("lib/aarch64-linux-gnu/libc.so.6").exists());
    assert!(root.join("usr/lib/aarch64-linux-gnu/libssl.so.3").exists());
    assert!(
        !root.join("usr/lib/aarch64-linux-gnu/libgcc_s.so.1").exists()
            && !root.join("lib/aarch64-linux-gnu/libgcc_s.so.1").exists(),
        "libgcc is cc's"
    );
}

#[test]
fn a_tampered_cached_deb_is_fetched_again_or_refused() {
    // A private cache, so other tests never see the damage.
    let cache = tempfile::tempdir().unwrap();
    let f = fixture("kiln 1\nimage \"s\" {\n    base \"distroless/static\"\n    platforms \"linux/amd64\"\n}\n");
    let go = |f: &Fixture| {
        kiln()
            .current_dir(f.path())
            .env("KILN_CACHE_DIR", cache.path())
            .args(["build", "--json", "--out", "out"])
            .output()
            .unwrap()
    };
    let first = summary(&go(&f));
    let pinned: Value = serde_json::from_str(lock()).unwrap();
    let tz = pinned["packages"].as_array().unwrap().iter().find(|p| p["name"] == "tzdata").unwrap().clone();
    let deb = cache.path().join("debs").join(format!("{}.deb", tz["sha256"].as_str().unwrap()));
    let flip = || {
        let mut bytes = std::fs::read(&deb).unwrap();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x01;
        std::fs::write(&deb, bytes).unwrap();
    };
    flip();
    let o = go(&f);
    assert!(stderr(&o).contains("does not match kiln.lock"), "the damage is noticed: {}", stderr(&o));
    let second = summary(&o);
    assert_eq!(first["index_digest"], second["index_digest"], "the refetched package gives the same image");
    let (sha, _) = sha256_file(&deb);
    assert_eq!(sha, tz["sha256"].as_str().unwrap(), "the cache holds the pinned bytes again");

    // With the mirror unreachable, a damaged package is refused, never used.
    flip();
    let unreachable = lock().replace("http://deb.debian.org/debian/pool", "http://127.0.0.1:9/debian/pool");
    f.write("kiln.lock", unreachable);
    std::fs::remove_dir_all(f.out()).unwrap();
    let o = go(&f);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not match kiln.lock") && stderr(&o).contains("cannot fetch"), "{}", stderr(&o));
    assert!(!f.out().exists());
}

fn sha256_file(p: &Path) -> (String, u64) {
    let out = run(Command::new("sha256sum").arg(p));
    (out[..64].to_string(), std::fs::metadata(p).unwrap().len())
}

#[test]
fn a_missing_or_stale_lock_tells_the_user_to_run_kiln_lock() {
    let f = Fixture::new();
    f.recipe("kiln 1\nimage \"s\" {\n    base \"distroless/static\"\n}\n");
    let o =
        kiln().current_dir(f.path()).env("KILN_CACHE_DIR", cache()).args(["build", "--out", "out"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("kiln::plan::missing_lock")
            && stderr(&o).contains("kiln lock")
            && stderr(&o).contains("kiln.kdl:3:10]"),
        "{}",
        stderr(&o)
    );
    // A lock made for another suite is stale.
    let other: Value = serde_json::from_str(lock()).unwrap();
    let mut other = other;
    other["suite"] = Value::String("trixie".into());
    f.write("kiln.lock", serde_json::to_string(&other).unwrap());
    let o =
        kiln().current_dir(f.path()).env("KILN_CACHE_DIR", cache()).args(["build", "--out", "out"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("kiln::plan::stale_lock") && !stderr(&o).contains("missing_lock"), "{}", stderr(&o));
    assert!(!f.out().exists());
}

#[test]
fn an_oci_layout_base_is_reused_layer_for_layer() {
    let base = fixture(
        "kiln 1\nimage \"base\" {\n    base \"distroless/static\"\n    file \"/etc/base.txt\" \"from the base\\n\"\n    workdir \"/srv\"\n    env GREETING=\"hi\"\n}\n",
    );
    build(&base);
    let app = Fixture::new();
    app.recipe(&format!(
        "kiln 1\nimage \"app\" {{\n    base \"oci-layout:{}:base\"\n    file \"/etc/app.txt\" \"from the app\\n\"\n    env MODE=\"prod\"\n}}\n",
        base.out().display()
    ));
    summary(&app.build());
    let work = tempfile::tempdir().unwrap();
    for (arch, variant) in PLATFORMS {
        let b = single_platform(&base.out(), "base", arch, variant, &work.path().join(format!("base-{arch}")));
        let a = single_platform(&app.out(), "app", arch, variant, &work.path().join(format!("app-{arch}")));
        oci_validate(&a, "app");
        let (bl, al) = (layer_digests(&b, "base"), layer_digests(&a, "app"));
        assert_eq!(al.len(), bl.len() + 1);
        assert_eq!(al[..bl.len()], bl[..], "{arch}: the base's layers come first, unchanged");
        let bundle = umoci_unpack(&a, "app", &work.path().join(format!("bundle-{arch}")));
        let root = bundle.join("rootfs");
        assert_eq!(std::fs::read_to_string(root.join("etc/base.txt")).unwrap(), "from the base\n");
        assert_eq!(std::fs::read_to_string(root.join("etc/app.txt")).unwrap(), "from the app\n");
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["process"]["cwd"], "/srv", "workdir comes from the base");
        let env = config["process"]["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e == "GREETING=hi") && env.iter().any(|e| e == "MODE=prod"), "{env:?}");
    }
}

#[test]
fn a_malformed_registry_base_is_refused_at_its_line_and_column() {
    let f = Fixture::new();
    f.recipe("kiln 1\nimage \"a\" {\n    base \"registry.example/App@sha256:00\"\n}\n");
    let o = kiln().current_dir(f.path()).arg("plan").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("kiln::recipe::base") && err.contains("kiln.kdl:3:10"), "{err}");
}

#[test]
fn a_distroless_image_sbom_lists_the_debian_packages_kiln_lock_pins_and_verify_passes() {
    let f = fixture(
        "kiln 1\ndefaults {\n    platforms \"linux/arm64\"\n}\nimage \"app\" {\n    base \"distroless/static\"\n    file \"/etc/app.conf\" \"x = 1\\n\"\n}\n",
    );
    let docs = f.path().join("docs");
    let o = kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", cache())
        .args(["build", "-q", "--sbom-out", "docs", "--out", "out"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let spdx: Value = serde_json::from_slice(&std::fs::read(docs.join("app.linux-arm64.spdx.json")).unwrap()).unwrap();
    let debs: Vec<(&str, &str, &str)> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["referenceLocator"].as_str().unwrap_or("").starts_with("pkg:deb/")))
        })
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap(),
                p["checksums"][0]["checksumValue"].as_str().unwrap(),
            )
        })
        .collect();
    for name in ["tzdata", "ca-certificates", "netbase", "media-types"] {
        assert!(debs.iter().any(|(n, _, _)| *n == name), "{name} is listed: {debs:?}");
    }
    // The source package each was built from, as the Packages index names it (kiln lock
    // records it): media-types and netbase are their own source packages.
    let source = |name: &str| {
        spdx["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["sourceInfo"].clone()
    };
    assert_eq!(source("tzdata"), "built from the Debian source package tzdata");
    assert_eq!(source("media-types"), "built from the Debian source package media-types");
    // Where the Packages index names another source package, the lock records that one.
    let lock_json: Value = serde_json::from_str(lock()).unwrap();
    let libc6 = lock_json["packages"].as_array().unwrap().iter().find(|p| p["name"] == "libc6").unwrap();
    assert_eq!(libc6["source"], "glibc", "{libc6}");
    // Each package's version and .deb sha256 are the ones kiln.lock pins for arm64.
    let text = lock();
    for (name, version, sha) in &debs {
        assert!(text.contains(*version) && text.contains(*sha), "{name} {version} {sha} is what kiln.lock pins");
    }
    let o =
        Command::new(require("pyspdxtools")).arg("-i").arg(docs.join("app.linux-arm64.spdx.json")).output().unwrap();
    assert!(o.status.success() && o.stdout.is_empty(), "{}{}", stdout(&o), stderr(&o));
    // kiln verify rebuilds the distroless image from empty caches (the .debs fetched again,
    // checked against kiln.lock) and finds it identical.
    let v = kiln().current_dir(f.path()).args(["verify", "--json"]).output().unwrap();
    let r: Value = serde_json::from_slice(&v.stdout).unwrap_or(Value::Null);
    assert_eq!(v.status.code(), Some(0), "{r:#}\n{}", stderr(&v));
    assert_eq!(r["reproducible"], true);
}
