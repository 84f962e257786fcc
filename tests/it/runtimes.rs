//! What kiln builds runs where users run images: `docker load` of a docker-archive (and
//! `kiln load`) into a dockerd the test starts, `podman run` of the layout itself, and an
//! oci-archive skopeo reads as the layout.

use crate::common::*;
use crate::servers::{Dockerd, podman_run};
use serde_json::Value;
use std::process::Command;

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "greet" {
    base "scratch"
    copy "busybox" "/bin/busybox" mode=0o755
    file "/etc/greeting" "hello from kiln\n"
    entrypoint "/bin/busybox" "cat" "/etc/greeting"
}
"#;

fn fixture() -> Fixture {
    let f = Fixture::new();
    f.recipe(RECIPE);
    std::fs::copy(require("busybox"), f.path().join("busybox")).expect("copy busybox");
    f
}

fn layout_digest(f: &Fixture) -> String {
    let index: Value = serde_json::from_slice(&std::fs::read(f.out().join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_docker_archive_loads_and_runs_in_docker_and_kiln_load_does_the_same() {
    let f = fixture();
    let o = f
        .build_cmd()
        .args(["--platform", "linux/amd64", "--output", "docker-archive=greet.tar", "--tag", "t1"])
        .output()
        .unwrap();
    let s = summary(&o);
    assert_eq!(s["archives"][0]["tags"], serde_json::json!(["greet:t1"]));
    // skopeo reads the archive as docker would, with the layout's config.
    let config = |reference: &str| -> Value {
        serde_json::from_str(&run(Command::new(require("skopeo")).args(["inspect", "--config", reference]))).unwrap()
    };
    let archive = config(&format!("docker-archive:{}", f.path().join("greet.tar").display()));
    let layout = config(&format!("oci:{}:greet", f.out().display()));
    assert_eq!(archive, layout, "the archive carries the layout's config");

    let docker = match Dockerd::start() {
        Ok(d) => d,
        Err(why) => return eprintln!("skipping the docker part: dockerd cannot start here: {why}"),
    };
    let loaded = run(docker.docker().arg("load").arg("-i").arg(f.path().join("greet.tar")));
    assert!(loaded.contains("greet:t1"), "{loaded}");
    let said = run(docker.docker().args(["run", "--rm", "--network", "none", "greet:t1"]));
    assert_eq!(said, "hello from kiln\n");

    let o = kiln()
        .current_dir(f.path())
        .env("DOCKER_HOST", docker.host())
        .env("DOCKER_CONFIG", f.path().join("docker-client"))
        .args(["load", "out", "--runtime", "docker", "--platform", "linux/amd64", "--tag", "t2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "kiln load: {}", stderr(&o));
    assert!(stdout(&o).contains("greet:t2"), "{}", stdout(&o));
    let said = run(docker.docker().args(["run", "--rm", "--network", "none", "greet:t2"]));
    assert_eq!(said, "hello from kiln\n");

    // containerd (as on a K3s device) imports the oci-archive under the name --tag gave it.
    let o = f.build_cmd().args(["--tag", "1.0", "--output", "oci-archive=all.tar"]).output().unwrap();
    summary(&o);
    let dir = std::path::PathBuf::from(docker.host().trim_start_matches("unix://"));
    let socket = dir.parent().unwrap().join("exec/containerd/containerd.sock");
    let ctr = || {
        let mut c = Command::new(require("ctr"));
        c.arg("--address").arg(&socket).args(["-n", "kiln-test"]);
        c
    };
    run(ctr().args(["images", "import", "--all-platforms"]).arg(f.path().join("all.tar")));
    let listed = run(ctr().args(["images", "ls", "-q"]));
    assert!(listed.lines().any(|l| l == "docker.io/library/greet:1.0"), "ctr images ls:\n{listed}");
}

#[test]
fn podman_runs_the_layout_and_skopeo_reads_the_oci_archive() {
    let f = fixture();
    let s = summary(&f.build_cmd().args(["--output", "oci-archive=all.tar"]).output().unwrap());
    let digest = layout_digest(&f);
    let raw = run(Command::new(require("skopeo")).args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}:greet", f.path().join("all.tar").display()),
    ]));
    use sha2::Digest;
    assert_eq!(
        format!("sha256:{:x}", sha2::Sha256::digest(raw.as_bytes())),
        digest,
        "the archive holds the layout's index"
    );
    assert!(s["archives"][0]["bytes"].as_u64().unwrap() > 0);

    let root = tempfile::Builder::new().prefix("kiln-podman-").tempdir_in("/tmp").unwrap();
    let o = podman_run(root.path(), &f.out(), "greet").output().unwrap();
    assert!(o.status.success(), "podman run: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello from kiln\n");
    // `kiln load --runtime podman` hands podman a docker archive (podman's storage named by
    // the storage.conf its environment gives, the same root the command above uses).
    let conf = root.path().join("storage.conf");
    let (graph, state) = (root.path().join("root"), root.path().join("run"));
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            graph.display(),
            state.display()
        ),
    )
    .unwrap();
    let o = kiln()
        .current_dir(f.path())
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("TMPDIR", root.path())
        .args(["load", "out", "--runtime", "podman", "--tag", "viaload"])
        .output()
        .unwrap();
    assert!(o.status.success(), "kiln load --runtime podman: {}", stderr(&o));
    let images = run(crate::servers::podman_cmd(root.path()).args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(images.lines().any(|l| l.ends_with("greet:viaload")), "podman images:\n{images}");
    // A tagged build names the image by its tag too.
    summary(&f.build_cmd().args(["--tag", "1.0"]).output().unwrap());
    let o = podman_run(root.path(), &f.out(), "greet:1.0").output().unwrap();
    assert!(o.status.success(), "podman run: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello from kiln\n");
}
