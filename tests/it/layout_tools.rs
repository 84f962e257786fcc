//! Builds fixture recipes and checks the OCI layout with outside tools: skopeo reads the
//! multi-platform index, oci-image-tool validates each platform's image, umoci unpacks it
//! (files, modes, owners, contents), runc runs a static binary, and tar/zstd read the layers.

use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "tools" {
    base "scratch"
    copy "conf/" "/etc/tools/"
    copy "dist/{arch}/info.txt" "/usr/share/tools/info.txt" mode=0o640 uid=65532 gid=65532
    copy "bin/run.sh" "/usr/local/bin/"
    file "/etc/motd" "built by kiln\n" mode=0o600
    entrypoint "/usr/local/bin/run.sh"
    cmd "--port" "8080"
    env PORT="8080"
    user "65532"
    workdir "/srv"
    expose 8080 "53/udp"
    label "org.opencontainers.image.title" "tools"
}
image "bb" {
    base "scratch"
    platforms "linux/amd64"
    copy "busybox" "/bin/busybox" mode=0o755
    file "/etc/greeting" "hello from a kiln image\n"
    entrypoint "/bin/busybox" "cat" "/etc/greeting"
    user "65532"
}
"#;

fn fixture() -> Fixture {
    let f = Fixture::new();
    f.recipe(RECIPE).write("conf/app.toml", "port = 8080\n").write("conf/nested/deep.json", "{}\n").write_mode(
        "bin/run.sh",
        "#!/bin/sh\necho run\n",
        0o755,
    );
    for arch in ["amd64", "arm64", "arm"] {
        f.write(&format!("dist/{arch}/info.txt"), format!("built for {arch}\n"));
    }
    std::fs::copy(require("busybox"), f.path().join("busybox")).expect("copy busybox");
    f
}

fn platform_of(m: &Value) -> (String, Option<String>) {
    let p = &m["platform"];
    (p["architecture"].as_str().unwrap().to_string(), p["variant"].as_str().map(str::to_string))
}

#[test]
fn skopeo_sees_one_index_with_three_platforms() {
    let f = fixture();
    let s = summary(&f.build());
    let index = skopeo_raw(&f.out(), "tools");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<_> = index["manifests"].as_array().unwrap().iter().map(platform_of).collect();
    assert_eq!(
        platforms,
        vec![("amd64".into(), None), ("arm64".into(), None), ("arm".into(), Some("v7".into()))],
        "platforms in the index"
    );
    assert_eq!(index["annotations"]["dev.kiln.compression"], "gzip;level=6;blocks=1MiB");
    // The summary's digests are the ones skopeo resolves.
    for m in index["manifests"].as_array().unwrap() {
        let (arch, variant) = platform_of(m);
        let name = match variant {
            Some(v) => format!("linux/{arch}/{v}"),
            None => format!("linux/{arch}"),
        };
        assert_eq!(s["images"][0]["platforms"][&name], m["digest"], "{name}");
    }
    let bb = skopeo_raw(&f.out(), "bb");
    assert_eq!(bb["manifests"].as_array().unwrap().len(), 1);
    // The layout as a whole validates (oci-image-tool checks the index and reference).
    let out = run(Command::new(require("oci-image-tool")).args([
        "validate",
        "--type",
        "image",
        "--ref",
        "name=tools",
        &f.out().display().to_string(),
    ]));
    assert!(out.contains("Validation succeeded"), "{out}");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn every_platform_validates_and_unpacks_as_the_recipe_says() {
    let f = fixture();
    summary(&f.build());
    let work = tempfile::tempdir().unwrap();
    let mut first_layers = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", None), ("arm", Some("v7"))] {
        let single = single_platform(&f.out(), "tools", arch, variant, &work.path().join(format!("layout-{arch}")));
        oci_validate(&single, "tools");
        let manifest = skopeo_raw(&single, "tools");
        let layers: Vec<String> =
            manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect();
        // One layer per node, least volatile first: two platform-independent copies, the
        // per-platform copy, then the recipe's own small files.
        assert_eq!(layers.len(), 4, "{manifest}");
        // Copied out of its index, the platform is named by the config, and the layer plan
        // (on the image index) is gone.
        let report: Value = serde_json::from_str(&run(kiln().args(["inspect", "--json"]).arg(&single))).unwrap();
        let platform = &report["images"][0]["platforms"][0];
        assert_eq!(
            platform["platform"],
            format!("linux/{arch}{}", variant.map(|v| format!("/{v}")).unwrap_or_default())
        );
        assert!(
            platform["layers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["key"].is_null() && l["why"] == "not built by kiln")
        );
        let keys = layer_keys(&f.out(), "tools", arch);
        assert_eq!(
            keys,
            [
                "copy conf/ /etc/tools/",
                "copy bin/run.sh /usr/local/bin/",
                "copy dist/{arch}/info.txt /usr/share/tools/info.txt",
                "config"
            ]
        );
        first_layers.push(layers);

        let bundle = umoci_unpack(&single, "tools", &work.path().join(format!("bundle-{arch}")));
        let root = bundle.join("rootfs");
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(read("etc/tools/app.toml"), "port = 8080\n");
        assert_eq!(read("etc/tools/nested/deep.json"), "{}\n");
        assert_eq!(read("usr/share/tools/info.txt"), format!("built for {arch}\n"));
        assert_eq!(read("etc/motd"), "built by kiln\n");
        assert_eq!(mode(&root.join("etc/tools/app.toml")), 0o644);
        assert_eq!(mode(&root.join("etc/tools/nested")), 0o755);
        assert_eq!(mode(&root.join("usr/local/bin/run.sh")), 0o755, "executable sources stay executable");
        assert_eq!(mode(&root.join("usr/share/tools/info.txt")), 0o640);
        assert_eq!(owner(&root.join("usr/share/tools/info.txt")), (65532, 65532));
        assert_eq!(mode(&root.join("etc/motd")), 0o600);
        assert_eq!(owner(&root.join("etc/motd")), (0, 0));

        // umoci turns the image config into the runtime config.
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
        let process = &config["process"];
        assert_eq!(process["args"], serde_json::json!(["/usr/local/bin/run.sh", "--port", "8080"]));
        assert_eq!(process["cwd"], "/srv");
        assert_eq!(process["user"]["uid"], 65532);
        assert!(process["env"].as_array().unwrap().iter().any(|e| e == "PORT=8080"));
    }
    for i in [0, 1, 3] {
        assert_eq!(
            first_layers[0][i], first_layers[1][i],
            "platform-independent layer {i} is shared by amd64 and arm64"
        );
        assert_eq!(
            first_layers[0][i], first_layers[2][i],
            "platform-independent layer {i} is shared by amd64 and arm/v7"
        );
    }
    assert_ne!(first_layers[0][2], first_layers[1][2], "per-platform layers differ");
}

#[test]
fn runc_runs_a_static_binary_from_the_image() {
    let f = fixture();
    summary(&f.build());
    let work = tempfile::tempdir().unwrap();
    let single = single_platform(&f.out(), "bb", "amd64", None, &work.path().join("layout"));
    oci_validate(&single, "bb");
    let bundle = umoci_unpack(&single, "bb", &work.path().join("bundle"));
    assert_eq!(runc_run(&bundle, "kiln-test"), "hello from a kiln image\n");
}

#[test]
fn zstd_layers_decompress_to_their_diff_ids() {
    let f = fixture();
    f.recipe(&RECIPE.replace("defaults {", "defaults {\n    compression \"zstd\" level=3"));
    summary(&f.build());
    let index = skopeo_raw(&f.out(), "tools");
    assert_eq!(index["annotations"]["dev.kiln.compression"], "zstd;level=3;workers");
    let work = tempfile::tempdir().unwrap();
    let single = single_platform(&f.out(), "tools", "arm", Some("v7"), &work.path().join("layout"));
    let manifest = skopeo_raw(&single, "tools");
    let config = run(Command::new(require("skopeo")).args([
        "inspect",
        "--config",
        "--raw",
        &format!("oci:{}:tools", single.display()),
    ]));
    let config: Value = serde_json::from_str(&config).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    for (layer, diff_id) in manifest["layers"].as_array().unwrap().iter().zip(diff_ids) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
        let blob = f.out().join("blobs/sha256").join(layer["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        let sum = run(Command::new("sh").arg("-c").arg(format!(
            "{} -dc '{}' | sha256sum",
            require("zstd").display(),
            blob.display()
        )));
        assert_eq!(format!("sha256:{}", &sum[..64]), diff_id.as_str().unwrap(), "diff_id of {}", layer["digest"]);
    }
    let listing = run(Command::new("sh").arg("-c").arg(format!(
        "{} -dc '{}' | tar -tv --numeric-owner --full-time",
        require("zstd").display(),
        f.out()
            .join("blobs/sha256")
            .join(manifest["layers"][2]["digest"].as_str().unwrap().trim_start_matches("sha256:"))
            .display()
    )));
    assert!(
        listing.contains("-rw-r----- 65532/65532") && listing.contains("1970-01-01 00:00:00 usr/share/tools/info.txt"),
        "{listing}"
    );
}

#[test]
fn gzip_layers_have_fixed_headers() {
    let f = fixture();
    let env_epoch = "1700000000";
    let o = kiln()
        .current_dir(f.path())
        .env("SOURCE_DATE_EPOCH", env_epoch)
        .args(["build", "-q", "--json", "--out", "out"])
        .output()
        .unwrap();
    summary(&o);
    let work = tempfile::tempdir().unwrap();
    let single = single_platform(&f.out(), "tools", "arm64", None, &work.path().join("layout"));
    let manifest = skopeo_raw(&single, "tools");
    let blob = f
        .out()
        .join("blobs/sha256")
        .join(manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    // gzip -l reads the header: no original name is stored.
    let header = std::fs::read(&blob).unwrap();
    assert_eq!(&header[..4], &[0x1f, 0x8b, 8, 0], "gzip magic with no FNAME flag");
    assert_eq!(&header[4..8], &[0, 0, 0, 0], "gzip mtime is zero");
    let listing =
        run(Command::new("tar").args(["-tvzf", &blob.display().to_string(), "--numeric-owner", "--full-time"]));
    let lines: Vec<&str> = listing.lines().collect();
    assert!(
        lines.iter().all(|l| l.contains("2023-11-14 22:13:20")),
        "every entry has mtime = SOURCE_DATE_EPOCH:\n{listing}"
    );
    assert!(lines.iter().all(|l| l.contains(" 0/0 ")), "numeric owners:\n{listing}");
    let names: Vec<&str> = lines.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert_eq!(names.first(), Some(&"etc/"), "parents come first");
}

#[test]
fn inspect_reports_sharing_across_platforms() {
    let f = fixture();
    summary(&f.build());
    let out = run(kiln().args(["inspect", "--json", &f.out().display().to_string()]));
    let report: Value = serde_json::from_str(&out).unwrap();
    let tools = &report["images"][0];
    assert_eq!(tools["name"], "tools");
    let shared = tools["platforms"][0]["layers"][0]["digest"].as_str().unwrap();
    let used_by = report["layers"][shared]["used_by"].as_array().unwrap();
    assert_eq!(used_by.len(), 3, "{used_by:?}");
    let text = run(kiln().args(["inspect", "--image", "bb", &f.out().display().to_string()]));
    assert!(text.contains("image bb") && !text.contains("image tools"), "{text}");
}

#[test]
fn a_platform_whose_layers_differ_records_its_own_layer_plan() {
    // Only amd64 has files under /opt/special/, which the layers block pins to a layer of
    // their own: amd64 has one layer more than the other platforms.
    let f = Fixture::new();
    f.recipe(
        "kiln 1\nlayers {\n    layer \"special\" {\n        path \"/opt/special/\"\n    }\n}\nimage \"p\" {\n    base \"scratch\"\n    platforms \"linux/amd64\" \"linux/arm64\" \"linux/arm/v7\"\n    copy \"dist/{arch}/\" \"/opt/\"\n}\n",
    );
    for arch in ["amd64", "arm64", "arm"] {
        f.write(&format!("dist/{arch}/tool"), format!("tool for {arch}\n"));
    }
    f.write("dist/amd64/special/extra", "only on amd64\n");
    summary(&f.build());
    let index = skopeo_raw(&f.out(), "p");
    let own = ["layer special", "copy dist/{arch}/ /opt/"];
    let common = ["copy dist/{arch}/ /opt/"];
    assert_eq!(index["annotations"]["dev.kiln.layers"], common.join("\n"), "{index}");
    for m in index["manifests"].as_array().unwrap() {
        let (arch, _) = platform_of(m);
        let recorded = &m["annotations"]["dev.kiln.layers"];
        if arch == "amd64" {
            assert_eq!(recorded, &own.join("\n"), "{m}");
        } else {
            assert!(recorded.is_null(), "{m}");
        }
    }
    assert_eq!(layer_keys(&f.out(), "p", "amd64"), own);
    assert_eq!(layer_keys(&f.out(), "p", "arm64"), common);
    // inspect reads the same plan, and a rebuild keeping it changes nothing.
    let report: Value =
        serde_json::from_str(&run(kiln().args(["inspect", "--json", &f.out().display().to_string()]))).unwrap();
    for p in report["images"][0]["platforms"].as_array().unwrap() {
        let keys: Vec<&str> = p["layers"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap()).collect();
        let expected: &[&str] = if p["platform"] == "linux/amd64" { &own } else { &common };
        assert_eq!(keys, expected, "{p}");
    }
    let again = f.path().join("again");
    let out = kiln()
        .args(["build", "-q", "-f"])
        .arg(f.recipe_path())
        .arg("--out")
        .arg(&again)
        .arg("--previous")
        .arg(f.out())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(again.join("index.json")).unwrap(), std::fs::read(f.out().join("index.json")).unwrap());
}
