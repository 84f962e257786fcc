//! `kiln push` and `kiln build --push` against Debian's real `docker-registry`, checked with
//! skopeo and with the registry's own access log and storage: digests equal to the layout's,
//! only missing blobs sent, mounts across repositories, a flaky link survived, a push cut off
//! midway leaving no tag, and basic authentication.

use crate::common::*;
use crate::servers::{Action, Fault, FaultProxy, Registry};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "greet" {
    base "scratch"
    copy "busybox" "/bin/busybox" mode=0o755
    copy "dist/{arch}/info.txt" "/etc/info.txt"
    file "/etc/greeting" "hello from kiln\n"
    entrypoint "/bin/busybox" "cat" "/etc/greeting"
}
"#;

/// The recipe's fixture, built; `big` adds an incompressible file of that many bytes per
/// platform (its layer is sent in chunks when larger than kiln's chunk size).
fn built(big: Option<usize>) -> Fixture {
    let f = Fixture::new();
    let mut recipe = RECIPE.to_string();
    if big.is_some() {
        recipe = recipe.replace(
            "    file \"/etc/greeting\"",
            "    copy \"dist/{arch}/big.bin\" \"/srv/big.bin\"\n    file \"/etc/greeting\"",
        );
    }
    f.recipe(&recipe);
    std::fs::copy(require("busybox"), f.path().join("busybox")).expect("copy busybox");
    for (i, arch) in ["amd64", "arm64", "arm"].into_iter().enumerate() {
        f.write(&format!("dist/{arch}/info.txt"), format!("built for {arch}\n"));
        if let Some(n) = big {
            f.write(&format!("dist/{arch}/big.bin"), noise(n, i as u64 + 1));
        }
    }
    summary(&f.build());
    f
}

/// A rendered error as one line (miette wraps long messages).
fn flat(s: &str) -> String {
    s.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ")
}

/// `kiln push --json` of the fixture's layout to `reference`, with further arguments.
fn push(f: &Fixture, reference: &str, args: &[&str]) -> Command {
    let mut c = kiln();
    c.current_dir(f.path()).env_remove("KILN_REGISTRY_USER").env_remove("KILN_REGISTRY_PASSWORD");
    c.env("KILN_CACHE_DIR", f.cache_path());
    c.env("DOCKER_CONFIG", f.path().join("no-docker-config"));
    c.args(["push", "-q", "--json", "out", reference]).args(args);
    c
}

fn pushed(o: &Output) -> Value {
    summary(o)["pushed"][0].clone()
}

/// The layout's image digest (its entry in index.json).
fn local_digest(layout: &Path) -> String {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
}

/// The configs and layers the layout's first image names.
fn image_blobs(layout: &Path) -> BTreeSet<String> {
    let json = |d: &str| -> Value { serde_json::from_slice(&blob(layout, d)).unwrap() };
    let index = json(&local_digest(layout));
    let mut out = BTreeSet::new();
    for m in index["manifests"].as_array().unwrap() {
        let manifest = json(m["digest"].as_str().unwrap());
        out.insert(manifest["config"]["digest"].as_str().unwrap().to_string());
        for l in manifest["layers"].as_array().unwrap() {
            out.insert(l["digest"].as_str().unwrap().to_string());
        }
    }
    out
}

/// `skopeo inspect --raw` of a registry reference: the exact bytes the registry serves.
fn remote_raw(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let mut c = Command::new(require("skopeo"));
    c.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        c.args(["--creds", creds]);
    }
    let o = c.arg(format!("docker://{reference}")).output().unwrap();
    assert!(o.status.success(), "skopeo inspect {reference}: {}", stderr(&o));
    o.stdout
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// Every blob `skopeo copy --all` fetches from the registry is byte-for-byte the layout's.
fn assert_registry_holds_the_layout(reference: &str, layout: &Path) {
    let copy = tempfile::tempdir().unwrap();
    run(Command::new(require("skopeo")).args([
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:copy", copy.path().display()),
    ]));
    let mut fetched = 0;
    for e in std::fs::read_dir(copy.path().join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        assert_eq!(std::fs::read(e.path()).unwrap(), blob(layout, &name), "blob {name} differs from the layout's");
        fetched += 1;
    }
    // The index, three manifests, and the configs and layers.
    assert_eq!(fetched, 4 + image_blobs(layout).len(), "skopeo fetched another set of blobs");
}

#[test]
fn a_pushed_image_has_the_layouts_digest_and_blobs() {
    let f = built(None);
    let reg = Registry::start();
    let reference = format!("{}/kiln/greet:1.0", reg.addr());
    let p = pushed(&push(&f, &reference, &[]).output().unwrap());
    let digest = local_digest(&f.out());
    assert_eq!(p["digest"], digest.as_str());
    assert_eq!(p["reference"], format!("{}/kiln/greet@{digest}", reg.addr()).as_str());
    assert_eq!(p["tags"], serde_json::json!([reference]));
    assert_eq!(sha256(&remote_raw(&reference, None)), digest, "the registry's index is the layout's, byte for byte");
    assert_registry_holds_the_layout(&reference, &f.out());
    let blobs = image_blobs(&f.out()).len();
    assert_eq!((p["blobs"].as_u64(), p["uploaded"].as_u64()), (Some(blobs as u64), Some(blobs as u64)));
    assert_eq!(reg.completed_blob_uploads(), blobs, "the registry's log:\n{}", reg.log());
    // Three manifests and the index by digest, then the tag.
    assert_eq!(reg.manifest_puts(), 5);
}

#[test]
fn pushing_again_sends_nothing_and_a_new_release_only_what_changed() {
    let f = built(None);
    let reg = Registry::start();
    let reference = format!("{}/kiln/greet:1.0", reg.addr());
    pushed(&push(&f, &reference, &[]).output().unwrap());
    let first = reg.completed_blob_uploads();
    let again = pushed(&push(&f, &reference, &[]).output().unwrap());
    assert_eq!(
        (again["uploaded"].as_u64(), again["present"].clone(), again["uploaded_bytes"].as_u64()),
        (Some(0), again["blobs"].clone(), Some(0))
    );
    assert_eq!(reg.completed_blob_uploads(), first, "a second push uploaded blobs:\n{}", reg.log());

    let old = image_blobs(&f.out());
    f.write("dist/amd64/info.txt", "built again for amd64\n");
    summary(&f.build());
    let new = image_blobs(&f.out());
    let changed = new.difference(&old).count();
    assert!(changed >= 2 && changed < new.len(), "the amd64 layer and config change, nothing else: {changed}");
    let next = pushed(&push(&f, &format!("{}/kiln/greet:1.1", reg.addr()), &[]).output().unwrap());
    assert_eq!(next["uploaded"].as_u64(), Some(changed as u64));
    assert_eq!(reg.completed_blob_uploads(), first + changed, "{}", reg.log());
    assert_eq!(sha256(&remote_raw(&format!("{}/kiln/greet:1.1", reg.addr()), None)), local_digest(&f.out()));
    assert_eq!(
        sha256(&remote_raw(&reference, None)),
        again["digest"].as_str().unwrap(),
        "1.0 still names the first release"
    );
}

#[test]
fn images_of_one_recipe_mount_the_layers_they_share() {
    let f = Fixture::new();
    f.recipe(
        r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64"
}
image "one" {
    base "scratch"
    copy "busybox" "/bin/busybox" mode=0o755
    file "/etc/name" "one\n"
}
image "two" {
    base "scratch"
    copy "busybox" "/bin/busybox" mode=0o755
    file "/etc/name" "two\n"
}
"#,
    );
    std::fs::copy(require("busybox"), f.path().join("busybox")).unwrap();
    let reg = Registry::start();
    let o = f.build_cmd().args(["--push", &format!("{}/fleet/{{image}}:7", reg.addr())]).output().unwrap();
    let s = summary(&o);
    let (one, two) = (&s["pushed"][0], &s["pushed"][1]);
    assert_eq!((one["image"].as_str(), two["image"].as_str()), (Some("one"), Some("two")));
    assert_eq!(one["mounted"].as_u64(), Some(0));
    let mounted = two["mounted"].as_u64().unwrap();
    assert!(mounted >= 1, "the busybox layer both images hold is mounted: {two}");
    assert_eq!(reg.mounts() as u64, mounted, "{}", reg.log());
    assert_eq!(
        reg.completed_blob_uploads() as u64,
        one["uploaded"].as_u64().unwrap() + two["uploaded"].as_u64().unwrap(),
        "a mounted blob is not uploaded"
    );
    for (i, name) in ["one", "two"].iter().enumerate() {
        let digest = s["images"][i]["digest"].as_str().unwrap();
        assert_eq!(sha256(&remote_raw(&format!("{}/fleet/{name}:7", reg.addr()), None)), digest);
    }
}

#[test]
fn a_flaky_link_still_gets_the_whole_image_through() {
    // 20 MiB per platform in 8 MiB chunks: each big layer goes in three, and a cut chunk is
    // resumed.
    let f = built(Some(20 << 20));
    let reg = Registry::start();
    let faults = vec![
        Fault {
            method: "HEAD",
            path_contains: "/blobs/sha256:",
            min_body: 0,
            action: Action::Stall(Duration::from_secs(6)),
        },
        Fault { method: "PUT", path_contains: "/blobs/uploads/", min_body: 100_000, action: Action::ResetMidBody },
        Fault { method: "PATCH", path_contains: "/blobs/uploads/", min_body: 1 << 20, action: Action::ResetMidBody },
        Fault { method: "PUT", path_contains: "/manifests/", min_body: 0, action: Action::Status(500) },
        Fault { method: "HEAD", path_contains: "/blobs/sha256:", min_body: 0, action: Action::Status(429) },
        // The second chunk of a big layer never reaches the registry: kiln times out, asks
        // the session how much it holds (8 MiB) and goes on from there.
        Fault {
            method: "PATCH",
            path_contains: "ange: 8388608-",
            min_body: 0,
            action: Action::Stall(Duration::from_secs(6)),
        },
    ];
    let proxy = FaultProxy::start(&reg.addr(), faults);
    let reference = format!("{}/kiln/greet:flaky", proxy.addr());
    let o = push(&f, &reference, &["--timeout", "2s", "--chunk-size", "8MiB"]).output().unwrap();
    let p = pushed(&o);
    assert_eq!(proxy.fired().len(), 6, "every fault fired: {:?}", proxy.fired());
    let digest = local_digest(&f.out());
    assert_eq!(p["digest"], digest.as_str());
    let direct = format!("{}/kiln/greet:flaky", reg.addr());
    assert_eq!(sha256(&remote_raw(&direct, None)), digest);
    assert_registry_holds_the_layout(&direct, &f.out());
    // After each cut chunk kiln asked the session how much it held: distribution drops a
    // session whose PATCH was cut off midway (404: that blob started again), and keeps one
    // whose PATCH never arrived (204: the upload went on from its 8 MiB).
    let asked: Vec<u16> = reg
        .requests()
        .iter()
        .filter(|e| e.method == "GET" && e.path.contains("/blobs/uploads/"))
        .map(|e| e.status)
        .collect();
    assert!(asked.contains(&404) && asked.contains(&204), "resumed and restarted uploads: {asked:?}\n{}", reg.log());
}

#[test]
fn a_push_cut_off_midway_names_the_blob_and_sets_no_tag() {
    let f = built(Some(20 << 20));
    let mut reg = Registry::start();
    let stall = Fault {
        method: "PATCH",
        path_contains: "/blobs/uploads/",
        min_body: 0,
        action: Action::Stall(Duration::from_secs(20)),
    };
    let proxy = FaultProxy::start(&reg.addr(), vec![stall]);
    let child = push(
        &f,
        &format!("{}/kiln/greet:cut", proxy.addr()),
        &["--timeout", "2s", "--tries", "2", "--chunk-size", "8MiB"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let started = Instant::now();
    while proxy.fired().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "the stall never fired");
        std::thread::sleep(Duration::from_millis(20));
    }
    reg.stop();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = flat(&stderr(&o));
    assert!(err.contains("uploading blob sha256:") && err.contains("after 2 tries"), "{err}");
    let tags = reg.storage().join("docker/registry/v2/repositories/kiln/greet/_manifests/tags");
    assert!(!tags.exists(), "a tag was set: {}", tags.display());
}

#[test]
fn basic_auth_takes_the_right_credentials_and_never_shows_the_password() {
    let f = built(None);
    let reg = Registry::start_with_auth("kiln", "s3cret-pw");
    let reference = format!("{}/kiln/greet:auth", reg.addr());
    let o = push(&f, &reference, &[])
        .env("KILN_REGISTRY_USER", "kiln")
        .env("KILN_REGISTRY_PASSWORD", "s3cret-pw")
        .output()
        .unwrap();
    let p = pushed(&o);
    assert_eq!(sha256(&remote_raw(&reference, Some("kiln:s3cret-pw"))), p["digest"].as_str().unwrap());

    let o = push(&f, &reference, &[])
        .env("KILN_REGISTRY_USER", "kiln")
        .env("KILN_REGISTRY_PASSWORD", "wrong-pw-9")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("kiln::registry::auth") && all.contains(&reg.addr()), "{all}");
    assert!(!all.contains("wrong-pw-9"), "the password was printed: {all}");

    let o = push(&f, &reference, &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(flat(&stderr(&o)).contains("no credentials are configured"), "{}", stderr(&o));

    // docker's config.json, as `docker login` writes it.
    let config = f.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let auth = run(Command::new("sh").args(["-c", "printf kiln:s3cret-pw | base64"]));
    std::fs::write(
        config.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#, reg.addr(), auth.trim()),
    )
    .unwrap();
    let o = push(&f, &format!("{}/kiln/greet:config", reg.addr()), &[]).env("DOCKER_CONFIG", &config).output().unwrap();
    pushed(&o);

    // A credential helper, as `credHelpers` names it (docker-credential-NAME get, on PATH).
    let bin = f.path().join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-kilntest");
    std::fs::write(&helper, "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"kiln\",\"Secret\":\"s3cret-pw\"}' \"$server\"\n").unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(config.join("config.json"), format!(r#"{{"credHelpers":{{"{}":"kilntest"}}}}"#, reg.addr()))
        .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = push(&f, &format!("{}/kiln/greet:helper", reg.addr()), &[])
        .env("DOCKER_CONFIG", &config)
        .env("PATH", path)
        .output()
        .unwrap();
    pushed(&o);
    assert!(!format!("{}{}", stdout(&o), stderr(&o)).contains("s3cret-pw"));
}

#[test]
fn a_registry_base_by_digest_builds_and_keeps_its_layers_digests() {
    let base = built(None);
    let reg = Registry::start();
    let p = pushed(&push(&base, &format!("{}/kiln/greet:1.0", reg.addr()), &[]).output().unwrap());
    let pinned = format!("{}/kiln/greet@{}", reg.addr(), p["digest"].as_str().unwrap());
    let recipe = format!(
        "kiln 1\nimage \"onbase\" {{\n    base \"{pinned}\"\n    file \"/etc/extra\" \"on a registry base\\n\"\n}}\n"
    );
    let build = |f: &Fixture| summary(&f.build());
    let (one, two) = (Fixture::new(), Fixture::new());
    for f in [&one, &two] {
        f.recipe(&recipe);
    }
    let s = build(&one);
    let manifest = |layout: &Path, digest: &str| -> Value { serde_json::from_slice(&blob(layout, digest)).unwrap() };
    for (platform, digest) in s["images"][0]["platforms"].as_object().unwrap() {
        let ours = manifest(&one.out(), digest.as_str().unwrap());
        let theirs = manifest(&base.out(), p_digest(&base, platform).as_str());
        let layers =
            |m: &Value| m["layers"].as_array().unwrap().iter().map(|l| l["digest"].clone()).collect::<Vec<_>>();
        let (ours, theirs) = (layers(&ours), layers(&theirs));
        assert_eq!(ours[..theirs.len()], theirs[..], "{platform}: the base's layers come first, as they are");
        assert_eq!(ours.len(), theirs.len() + 1, "{platform}: one layer of the recipe's own");
    }
    // Another directory with an empty cache pulls again and gets the same image; one
    // platform is planned from an empty cache too.
    assert_eq!(build(&two)["images"][0]["digest"], s["images"][0]["digest"]);
    let three = Fixture::new();
    three.recipe(&recipe);
    let o = three.build_cmd().args(["--platform", "linux/arm64"]).output().unwrap();
    assert_eq!(summary(&o)["images"][0]["platforms"]["linux/arm64"], s["images"][0]["platforms"]["linux/arm64"]);
    run(Command::new(require("skopeo")).args(["inspect", &format!("oci:{}:onbase", one.out().display())]));

    // A base by tag is pinned by `kiln lock`, and a build never follows the tag by itself.
    let tagged = Fixture::new();
    tagged.recipe(&recipe.replace(&pinned, &format!("{}/kiln/greet:1.0", reg.addr())));
    let o = tagged.build();
    assert_eq!(o.status.code(), Some(2));
    assert!(flat(&stderr(&o)).contains("names a tag kiln.lock does not pin"), "{}", stderr(&o));
    let lock = |f: &Fixture| run(kiln().current_dir(f.path()).env("DOCKER_CONFIG", f.path()).args(["lock", "-q"]));
    lock(&tagged);
    let locked: Value = serde_json::from_slice(&std::fs::read(tagged.path().join("kiln.lock")).unwrap()).unwrap();
    assert_eq!(locked["bases"][format!("{}/kiln/greet:1.0", reg.addr())], p["digest"]);
    assert_eq!(build(&tagged)["images"][0]["digest"], s["images"][0]["digest"], "the pinned tag is the digest");
    // The tag moves on: builds keep the pinned base until `kiln lock` runs again.
    base.write("dist/arm64/info.txt", "built again for arm64\n");
    summary(&base.build());
    let moved = pushed(&push(&base, &format!("{}/kiln/greet:1.0", reg.addr()), &[]).output().unwrap());
    assert_ne!(moved["digest"], p["digest"]);
    assert_eq!(build(&tagged)["images"][0]["digest"], s["images"][0]["digest"], "a build followed the tag");
    lock(&tagged);
    assert_ne!(build(&tagged)["images"][0]["digest"], s["images"][0]["digest"], "kiln lock pins the tag anew");
}

/// The digest of one platform's manifest of the fixture's image.
fn p_digest(f: &Fixture, platform: &str) -> String {
    let index: Value = serde_json::from_slice(&blob(&f.out(), &local_digest(&f.out()))).unwrap();
    let (os_arch, variant) = match platform.rsplit_once("/v") {
        Some((a, v)) if platform.matches('/').count() == 2 => (a.to_string(), Some(format!("v{v}"))),
        _ => (platform.to_string(), None),
    };
    let m = index["manifests"].as_array().unwrap().iter().find(|m| {
        format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
            == os_arch
            && m["platform"]["variant"].as_str().map(str::to_string) == variant
    });
    m.unwrap()["digest"].as_str().unwrap().to_string()
}

#[test]
fn diff_reads_a_registry_without_downloading_layers() {
    let f = built(None);
    let reg = Registry::start();
    pushed(&push(&f, &format!("{}/kiln/greet:1.0", reg.addr()), &[]).output().unwrap());
    let old = f.path().join("old");
    run(Command::new("cp").arg("-a").arg(f.out()).arg(&old));
    f.write("dist/amd64/info.txt", "built again for amd64\n");
    summary(&f.build());
    pushed(&push(&f, &format!("{}/kiln/greet:1.1", reg.addr()), &[]).output().unwrap());
    let layers: BTreeSet<String> = image_blobs(&f.out()).into_iter().chain(image_blobs(&old)).collect();

    let diff = |a: &str, b: &str| {
        let o = kiln().current_dir(f.path()).args(["diff", "--json", a, b]).output().unwrap();
        summary(&o)
    };
    let before = reg.requests().len();
    let remote = diff(&format!("{}/kiln/greet:1.0", reg.addr()), &format!("{}/kiln/greet:1.1", reg.addr()));
    let local = diff("old", "out");
    assert_eq!(remote, local, "the registry's releases diff as the layouts do");
    assert!(remote["total_bytes"].as_u64().unwrap() > 0);
    let fetched: Vec<_> = reg.requests()[before..]
        .iter()
        .filter(|e| e.method == "GET" && e.path.contains("/blobs/"))
        .map(|e| e.path.rsplit('/').next().unwrap().to_string())
        .collect();
    let layer_gets = fetched.iter().filter(|d| layers.contains(*d) && blob_is_layer(&f, &old, d)).count();
    assert_eq!(layer_gets, 0, "the diff downloaded layers: {fetched:?}");

    // A bundle between the two tags applies to a device's layout of the first.
    let (have, want) = (format!("{}/kiln/greet:1.0", reg.addr()), format!("{}/kiln/greet:1.1", reg.addr()));
    let cmd = |args: &[&str]| run(kiln().current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).args(args));
    cmd(&["bundle", "--have", &have, "--want", &want, "-o", "u.tar"]);
    cmd(&["apply", "u.tar", "--to", "old"]);
    assert_eq!(std::fs::read(old.join("index.json")).unwrap(), std::fs::read(f.out().join("index.json")).unwrap());
    assert_eq!(image_blobs(&old), image_blobs(&f.out()), "the device holds the new release");
    // And the new release may be laid out after the one in the registry.
    cmd(&["plan", "--previous", &have]);
}

/// Whether `digest` is a layer (not a config) of either layout's image.
fn blob_is_layer(f: &Fixture, old: &Path, digest: &str) -> bool {
    [f.out(), old.to_path_buf()].iter().any(|layout| {
        let json = |d: &str| -> Value { serde_json::from_slice(&blob(layout, d)).unwrap() };
        let index = json(&local_digest(layout));
        index["manifests"].as_array().unwrap().iter().any(|m| {
            let manifest = json(m["digest"].as_str().unwrap());
            manifest["layers"].as_array().unwrap().iter().any(|l| l["digest"].as_str() == Some(digest))
        })
    })
}

#[test]
fn tls_is_checked_against_the_systems_roots_and_the_ones_given() {
    let f = built(None);
    let (reg, ca) = Registry::start_with_tls();
    let reference = format!("https://{}/kiln/greet:tls", reg.addr());
    // The registry's authority is not among the system's: the push is refused, naming why.
    let o = push(&f, &reference, &["--tries", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = flat(&stderr(&o));
    assert!(err.contains(&reg.addr()) && err.to_lowercase().contains("certificate"), "{err}");
    // Trusting it (as `SSL_CERT_FILE` adds a root) lets the push through TLS.
    let p = pushed(&push(&f, &reference, &[]).env("SSL_CERT_FILE", &ca).output().unwrap());
    assert_eq!(p["reference"], format!("{}/kiln/greet@{}", reg.addr(), local_digest(&f.out())).as_str());
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(&ca, certs.path().join("ca.crt")).unwrap();
    let mut skopeo = Command::new(require("skopeo"));
    skopeo
        .args(["inspect", "--raw", "--cert-dir"])
        .arg(certs.path())
        .arg(format!("docker://{}/kiln/greet:tls", reg.addr()));
    let raw = run(&mut skopeo);
    assert_eq!(sha256(raw.as_bytes()), local_digest(&f.out()));
}

#[test]
fn a_later_push_to_another_repository_mounts_what_an_earlier_one_sent() {
    let f = built(None);
    let reg = Registry::start();
    let first = pushed(&push(&f, &format!("{}/team-a/greet:1", reg.addr()), &[]).output().unwrap());
    let second = pushed(&push(&f, &format!("{}/team-b/greet:1", reg.addr()), &[]).output().unwrap());
    assert_eq!(second["uploaded"].as_u64(), Some(0), "{second}");
    assert_eq!(second["mounted"], first["blobs"], "every blob is mounted from team-a");
    assert_eq!(reg.mounts() as u64, first["blobs"].as_u64().unwrap(), "{}", reg.log());
    assert_eq!(sha256(&remote_raw(&format!("{}/team-b/greet:1", reg.addr()), None)), local_digest(&f.out()));
}

/// A registry that answers every manifest or blob request with `body` (and `/v2/` with 200),
/// on 127.0.0.1, for as long as the test holds it; returns its address.
fn lying_registry(body: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let mut s = &stream;
                        if s.write_all(head.as_bytes()).and_then(|()| s.write_all(&body)).is_err() {
                            return;
                        }
                    }
                    line.clear();
                }
            });
        }
    });
    addr
}

#[test]
fn a_registry_that_lies_about_a_base_is_refused_with_exit_2() {
    let zeros = format!("sha256:{}", "0".repeat(64));
    for (body, why) in [
        (br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(), "does not match its digest"),
        (vec![b' '; 5 << 20], "limit"),
    ] {
        let addr = lying_registry(body);
        let f = Fixture::new();
        f.recipe(&format!("kiln 1\nimage \"x\" {{\n    base \"{addr}/evil/base@{zeros}\"\n}}\n"));
        let o = f.build();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = flat(&stderr(&o));
        assert!(err.contains(&addr) && err.contains(why), "{why}: {err}");
        assert!(!f.out().exists(), "nothing is written");
        let cached = f.cache_path().join("registry/blobs/sha256").join("0".repeat(64));
        assert!(!cached.exists(), "the lie was cached");
    }
}

#[test]
fn a_device_pulls_only_what_it_lacks_and_goes_on_after_a_cut() {
    let f = built(Some(4 << 20));
    let reg = Registry::start();
    pushed(&push(&f, &format!("{}/kiln/greet:1", reg.addr()), &[]).output().unwrap());
    let pull = |addr: &str, tag: &str, args: &[&str]| {
        kiln()
            .current_dir(f.path())
            .env("KILN_CACHE_DIR", f.cache_path())
            .args(["pull", "--json", &format!("{addr}/kiln/greet:{tag}"), "--to", "device"])
            .args(args)
            .output()
            .unwrap()
    };
    // The blob fetched last stalls past the timeout: the pull fails and writes no layout.
    let mut all: Vec<String> = image_blobs(&f.out()).into_iter().collect();
    all.extend(
        std::fs::read_dir(f.out().join("blobs/sha256"))
            .unwrap()
            .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy())),
    );
    all.sort();
    let last: &'static str = Box::leak(format!("/blobs/{}", all.last().unwrap()).into_boxed_str());
    let stall =
        Fault { method: "GET", path_contains: last, min_body: 0, action: Action::Stall(Duration::from_secs(5)) };
    let proxy = FaultProxy::start(&reg.addr(), vec![stall]);
    let o = pull(&proxy.addr(), "1", &["--timeout", "1s", "--tries", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(proxy.fired().len(), 1);
    assert!(!f.path().join("device").join("index.json").exists(), "a cut pull wrote a layout");
    // The next run goes on where it stopped.
    let s = summary(&pull(&reg.addr(), "1", &[]));
    let blobs = s["blobs"].as_u64().unwrap();
    assert_eq!((s["downloaded"].as_u64(), s["resumed"].as_u64()), (Some(1), Some(blobs - 1)), "{s}");
    assert!(layout_files(&f.path().join("device")) == layout_files(&f.out()), "the device does not hold the release");

    // A new release: only what changed comes down, and what it no longer uses goes.
    f.write("dist/amd64/info.txt", "built again for amd64\n");
    summary(&f.build());
    pushed(&push(&f, &format!("{}/kiln/greet:2", reg.addr()), &[]).output().unwrap());
    let s = summary(&pull(&reg.addr(), "2", &[]));
    // The image index, the amd64 manifest, its config and its changed layer.
    assert_eq!((s["downloaded"].as_u64(), s["pruned"].as_u64()), (Some(4), Some(4)), "{s}");
    assert!(layout_files(&f.path().join("device")) == layout_files(&f.out()), "the device does not hold release 2");
}
