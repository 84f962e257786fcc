//! Layouts and bundles kiln did not write, or that were damaged after it wrote them. Every
//! command that reads one (`inspect`, `diff`, `bundle`, `apply`) checks what it reads before it
//! uses it: it fails with exit code 2, a stable code and a message naming what is wrong, and it
//! writes nothing (no `-o` file; the layout `apply` was given is left byte for byte as it was,
//! and skopeo and oci-image-tool still read it).

use crate::common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64"
}
image "site" {
    base "scratch"
    copy "www/" "/srv/www/"
    file "/etc/site.conf" "port = 8080\n"
}
"#;

/// A recipe of one image on two platforms, built into layouts beside it.
struct Site {
    f: Fixture,
    cache: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let f = Fixture::new();
        f.recipe(RECIPE).write("www/index.html", "<h1>v1</h1>\n".repeat(40)).write("www/about.html", "about\n");
        Site { f, cache: tempfile::tempdir().unwrap() }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.f.path().join(p)
    }

    /// `kiln build --out OUT` with the page saying `version`.
    fn build(&self, out: &str, version: &str) -> PathBuf {
        self.f.write("www/index.html", format!("<h1>{version}</h1>\n").repeat(40));
        summary(
            &kiln()
                .current_dir(self.f.path())
                .env("KILN_CACHE_DIR", self.cache.path())
                .args(["build", "-q", "--json", "--out", out])
                .output()
                .unwrap(),
        );
        self.path(out)
    }
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join(digest.parse::<kiln::oci::digest::Digest>().unwrap().layout_path())
}

fn json_of(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Writes a blob; returns its digest and size.
fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = kiln::oci::digest::sha256_digest(bytes);
    std::fs::write(blob(layout, &digest), bytes).unwrap();
    (digest, bytes.len() as u64)
}

/// Edits the image index of the layout's first image and points index.json at the result.
fn edit_image_index(layout: &Path, edit: impl FnOnce(&Path, &mut Value)) {
    let mut top = json_of(&layout.join("index.json"));
    let mut index = json_of(&blob(layout, top["manifests"][0]["digest"].as_str().unwrap()));
    edit(layout, &mut index);
    let (digest, size) = put_blob(layout, &serde_json::to_vec(&index).unwrap());
    top["manifests"][0]["digest"] = json!(digest);
    top["manifests"][0]["size"] = json!(size);
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}

/// Edits the first platform's manifest of the layout's first image, and the descriptors up to
/// index.json, so that only what `edit` changed is wrong.
fn edit_manifest(layout: &Path, edit: impl FnOnce(&mut Value)) {
    edit_image_index(layout, |layout, index| {
        let mut manifest = json_of(&blob(layout, index["manifests"][0]["digest"].as_str().unwrap()));
        edit(&mut manifest);
        let (digest, size) = put_blob(layout, &serde_json::to_vec(&manifest).unwrap());
        index["manifests"][0]["digest"] = json!(digest);
        index["manifests"][0]["size"] = json!(size);
    });
}

/// The first layer of the first platform's manifest: (digest, size).
fn first_layer(layout: &Path) -> (String, u64) {
    let top = json_of(&layout.join("index.json"));
    let index = json_of(&blob(layout, top["manifests"][0]["digest"].as_str().unwrap()));
    let manifest = json_of(&blob(layout, index["manifests"][0]["digest"].as_str().unwrap()));
    let l = &manifest["layers"][0];
    assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    (l["digest"].as_str().unwrap().to_string(), l["size"].as_u64().unwrap())
}

/// Changes a gzip layer's header (the OS byte, which decompressors ignore): the blob keeps
/// its size and still decompresses to the same tar, but its digest is no longer its name.
fn damage_gzip_header(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "a gzip stream");
    bytes[9] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
    // An outside tool still reads it: only the digest tells.
    run(Command::new("tar").arg("-tzf").arg(path));
}

/// Every file under `dir` (relative path, mode, bytes), sorted.
fn snapshot(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let mode = e.metadata().unwrap().permissions().mode();
            if e.file_type().unwrap().is_dir() {
                out.push((rel, mode, Vec::new()));
                todo.push(e.path());
            } else {
                out.push((rel, mode, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The layout is what it was, nothing was left beside it, and outside tools still read it:
/// `skopeo inspect --raw`, and `oci-image-tool validate` of its arm64 image.
fn assert_untouched(layout: &Path, before: &[(String, u32, Vec<u8>)]) {
    assert!(snapshot(layout) == before, "{} changed", layout.display());
    let beside: Vec<String> = std::fs::read_dir(layout.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kiln-"))
        .collect();
    assert!(beside.is_empty(), "left beside the layout: {beside:?}");
    let index = skopeo_raw(layout, "site");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let work = tempfile::tempdir().unwrap();
    let one = single_platform(layout, "site", "arm64", None, &work.path().join("arm64"));
    oci_validate(&one, "site");
}

/// Text without white space or miette's `|` margins, so that a message wrapped at any width
/// can be looked for.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '|').collect()
}

/// Exit code 2, the stable code, and the message (wrapped as it may be), and no panic.
#[track_caller]
fn assert_fails(o: &Output, code: &str, message: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(code), "no {code} in:\n{err}");
    assert!(squash(&err).contains(&squash(message)), "no `{message}` in:\n{err}");
}

fn inspect(layout: &Path) -> Output {
    kiln().arg("inspect").arg(layout).output().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// An empty directory to write bundles into: it must stay empty when kiln refuses.
fn out_dir(site: &Site) -> PathBuf {
    let d = site.path("bundles");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "written in {}: {left:?}", dir.display());
}

fn bundle(have: &Path, want: &Path, file: &Path) -> Output {
    kiln().args(["bundle", "--have"]).arg(have).arg("--want").arg(want).arg("-o").arg(file).output().unwrap()
}

fn apply(file: &Path, layout: &Path) -> Output {
    kiln().arg("apply").arg(file).arg("--to").arg(layout).output().unwrap()
}

/// The members of a bundle, in order.
fn members(file: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut a = tar::Archive::new(std::fs::File::open(file).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (e.path().unwrap().display().to_string(), bytes)
        })
        .collect()
}

/// A tar of `members`, as `kiln bundle` writes one.
fn write_tar(file: &Path, members: &[(String, Vec<u8>)]) {
    let mut tar = tar::Builder::new(std::fs::File::create(file).unwrap());
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    tar.finish().unwrap();
}

/// A copy of a bundle whose kiln-bundle.json `edit` changed.
fn with_manifest(from: &Path, to: &Path, edit: impl FnOnce(&mut Value)) {
    let mut m = members(from);
    let mut manifest: Value = serde_json::from_slice(&m[0].1).unwrap();
    assert_eq!(m[0].0, "kiln-bundle.json");
    edit(&mut manifest);
    m[0].1 = serde_json::to_vec(&manifest).unwrap();
    write_tar(to, &m);
}

fn release(layout: &Path) -> String {
    kiln::oci::digest::sha256_digest(&std::fs::read(layout.join("index.json")).unwrap())
}

// 1. A layer is hashed while inspect reads it.
#[test]
fn inspect_refuses_a_layer_whose_bytes_are_not_its_digest() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let (layer, size) = first_layer(&v1);
    damage_gzip_header(&blob(&v1, &layer));
    assert_eq!(std::fs::metadata(blob(&v1, &layer)).unwrap().len(), size, "same size, other bytes");
    let before = snapshot(&v1);
    for json in [false, true] {
        let mut c = kiln();
        c.arg("inspect").arg(&v1);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert_fails(&o, "kiln::layout::invalid", &format!("blob {layer} has digest sha256:"));
        assert_eq!(stdout(&o), "", "nothing of the layer is listed");
    }
    assert!(snapshot(&v1) == before);
}

// 2. A blob is hashed while it is copied into a bundle.
#[test]
fn bundle_refuses_a_damaged_blob_of_want_and_writes_nothing() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let v2 = site.build("v2", "v2");
    // The pages changed: v2's first layer is new, and goes into the bundle.
    let (layer, _) = first_layer(&v2);
    assert_ne!(first_layer(&v1).0, layer);
    damage_gzip_header(&blob(&v2, &layer));
    let out = out_dir(&site);
    let o = bundle(&v1, &v2, &out.join("update.tar"));
    assert_fails(&o, "kiln::layout::invalid", &format!("blob {layer} has digest sha256:"));
    assert_empty(&out);
}

// 3. JSON documents are read up to 4 MiB, and a descriptor's size must be its blob's.
#[test]
fn json_is_read_up_to_4_mib_and_sizes_must_match_their_descriptors() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let cap = "more than the 4194304 bytes kiln reads of a JSON document";

    // A 1 GiB index.json (sparse): refused from its size, unread.
    let huge = site.path("huge");
    copy_dir(&v1, &huge);
    let f = std::fs::OpenOptions::new().write(true).open(huge.join("index.json")).unwrap();
    f.set_len(1 << 30).unwrap();
    let started = std::time::Instant::now();
    let o = inspect(&huge);
    assert_fails(&o, "kiln::layout::too_large", &format!("{}/index.json is 1073741824 bytes, {cap}", huge.display()));
    assert!(started.elapsed().as_secs() < 10, "it was read: {:?}", started.elapsed());
    let o = kiln().arg("diff").arg(&v1).arg(&huge).output().unwrap();
    assert_fails(&o, "kiln::layout::too_large", "index.json is 1073741824 bytes");

    // A manifest of 5 MiB, its descriptors right: refused by the descriptor's size.
    let big = site.path("big");
    copy_dir(&v1, &big);
    edit_manifest(&big, |m| m["annotations"] = json!({ "pad": "a".repeat(5 << 20) }));
    let top = json_of(&big.join("index.json"));
    let index = json_of(&blob(&big, top["manifests"][0]["digest"].as_str().unwrap()));
    let manifest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let size = index["manifests"][0]["size"].as_u64().unwrap();
    assert!(size > 5 << 20);
    let o = inspect(&big);
    assert_fails(&o, "kiln::layout::too_large", &format!("{} is {size} bytes, {cap}", blob(&big, &manifest).display()));

    // index.json says the image index is one byte longer than it is.
    let longer = site.path("longer");
    copy_dir(&v1, &longer);
    let mut top = json_of(&longer.join("index.json"));
    let (digest, size) =
        (top["manifests"][0]["digest"].as_str().unwrap().to_string(), top["manifests"][0]["size"].clone());
    top["manifests"][0]["size"] = json!(size.as_u64().unwrap() + 1);
    std::fs::write(longer.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    let o = inspect(&longer);
    let n = size.as_u64().unwrap();
    assert_fails(&o, "kiln::layout::invalid", &format!("blob {digest} is {n} bytes; its descriptor says {}", n + 1));

    // A manifest says its first layer is one byte shorter than it is.
    let shorter = site.path("shorter");
    copy_dir(&v1, &shorter);
    let (layer, n) = first_layer(&shorter);
    edit_manifest(&shorter, |m| m["layers"][0]["size"] = json!(n - 1));
    let o = inspect(&shorter);
    assert_fails(&o, "kiln::layout::invalid", &format!("blob {layer} is {n} bytes; its descriptor says {}", n - 1));
    let out = out_dir(&site);
    let o = bundle(&v1, &shorter, &out.join("u.tar"));
    assert_fails(&o, "kiln::layout::invalid", &format!("blob {layer} is {n} bytes; its descriptor says {}", n - 1));
    assert_empty(&out);

    // A bundle whose own manifest is over the cap is refused unread, the layout left alone.
    let v2 = site.build("v2", "v2");
    let file = out.join("u.tar");
    run(kiln().args(["bundle", "--have"]).arg(&v1).arg("--want").arg(&v2).arg("-o").arg(&file));
    let padded = site.path("padded.tar");
    with_manifest(&file, &padded, |m| m["pad"] = json!("a".repeat(5 << 20)));
    let device = site.path("device");
    copy_dir(&v1, &device);
    let before = snapshot(&device);
    let o = apply(&padded, &device);
    assert_fails(&o, "kiln::update::refused", "kiln-bundle.json is ");
    assert_fails(&o, "kiln::update::refused", cap);
    assert_untouched(&device, &before);
}

// 4. A bundle names the release it builds on; apply checks it, and refuses bundles that
// would empty the layout or hold a member twice.
#[test]
fn apply_refuses_bundles_for_another_release_empty_indexes_and_repeated_members() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let v2 = site.build("v2", "v2");
    let v3 = site.build("v3", "v3");
    let work = tempfile::tempdir().unwrap();
    let update = work.path().join("update.tar");
    run(kiln().args(["bundle", "--have"]).arg(&v1).arg("--want").arg(&v2).arg("-o").arg(&update));
    let manifest: Value = serde_json::from_slice(&members(&update)[0].1).unwrap();
    assert_eq!(manifest["bundle_format"], 2);
    assert_eq!(manifest["base"], json!(release(&v1)), "the bundle names v1's index.json");

    // A device holding v3 is not the base: refused, naming both releases.
    let device = site.path("device");
    copy_dir(&v3, &device);
    let before = snapshot(&device);
    let o = apply(&update, &device);
    let both = format!("it builds on release {}, and the layout holds release {}", release(&v1), release(&v3));
    assert_fails(&o, "kiln::update::refused", &both);
    assert_untouched(&device, &before);

    // A first install (from a layout that holds nothing) names no release, and goes only
    // onto a layout that holds nothing.
    let empty = site.path("empty");
    std::fs::create_dir_all(empty.join("blobs/sha256")).unwrap();
    std::fs::write(empty.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(empty.join("index.json"), r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    let first = work.path().join("first.tar");
    run(kiln().args(["bundle", "--have"]).arg(&empty).arg("--want").arg(&v1).arg("-o").arg(&first));
    assert_eq!(serde_json::from_slice::<Value>(&members(&first)[0].1).unwrap()["base"], Value::Null);
    let o = apply(&first, &device);
    let onto = format!(
        "it builds on a layout that holds no image (a first install), and the layout holds release {}",
        release(&v3)
    );
    assert_fails(&o, "kiln::update::refused", &onto);
    assert_untouched(&device, &before);

    // A bundle whose index.json lists no image would leave the layout empty.
    let v1_device = site.path("v1-device");
    copy_dir(&v1, &v1_device);
    let before = snapshot(&v1_device);
    let nothing = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
    let emptying = work.path().join("emptying.tar");
    let mut m = members(&update);
    let mut manifest: Value = serde_json::from_slice(&m[0].1).unwrap();
    manifest["index_json"] = json!(kiln::oci::digest::sha256_digest(&nothing));
    manifest["provides"] = json!([]);
    m[0].1 = serde_json::to_vec(&manifest).unwrap();
    m[1] = ("index.json".into(), nothing);
    m.truncate(3);
    write_tar(&emptying, &m);
    let o = apply(&emptying, &v1_device);
    assert_fails(&o, "kiln::update::refused", "its index.json lists no image: applying it would empty the layout");
    assert_untouched(&v1_device, &before);

    refuses_doubled_members_and_other_formats(&update, &v1_device, &before, work.path());
    // Format 2 without its base is not a first install.
    let baseless = work.path().join("baseless.tar");
    with_manifest(&update, &baseless, |m| {
        m.as_object_mut().unwrap().remove("base");
    });
    let o = apply(&baseless, &v1_device);
    assert_fails(&o, "kiln::update::refused", "kiln-bundle.json does not name the release it builds on");
    assert_untouched(&v1_device, &before);

    // The bundle itself applies to the release it names, and the first install to a layout
    // that holds nothing; applied again (a device retrying after a power loss), it checks the
    // release in place and changes nothing.
    run(Command::new("cp").arg("-a").arg(&empty).arg(site.path("new-device")));
    let new_device = site.path("new-device");
    run(kiln().arg("apply").arg(&first).arg("--to").arg(&new_device));
    assert_eq!(release(&new_device), release(&v1));
    run(kiln().arg("apply").arg(&update).arg("--to").arg(&v1_device));
    assert_eq!(release(&v1_device), release(&v2));
    let applied = snapshot(&v1_device);
    run(kiln().arg("apply").arg(&update).arg("--to").arg(&v1_device));
    assert_untouched(&v1_device, &applied);
}

/// `update` with a member held twice, or with another `bundle_format`, is refused by the
/// device holding its base release, which is left as `before`.
fn refuses_doubled_members_and_other_formats(
    update: &Path,
    v1_device: &Path,
    before: &[(String, u32, Vec<u8>)],
    work: &Path,
) {
    // A member held twice (a blob, or index.json) is refused.
    let m = members(update);
    let blob_member = m.iter().find(|(n, _)| n.starts_with("blobs/")).unwrap().clone();
    for twice in [blob_member, m[1].clone()] {
        let doubled = work.join("doubled.tar");
        let mut again = m.clone();
        again.push(twice.clone());
        write_tar(&doubled, &again);
        let o = apply(&doubled, v1_device);
        assert_fails(&o, "kiln::update::refused", &format!("it holds \"{}\" twice", twice.0));
        assert_untouched(v1_device, before);
    }

    // Formats other than this kiln's are refused: 1 named no base, 4 is from the future.
    for (format, drop_base) in [(1, true), (4, false)] {
        let other = work.join("other.tar");
        with_manifest(update, &other, |m| {
            m["bundle_format"] = json!(format);
            if drop_base {
                m.as_object_mut().unwrap().remove("base");
            }
        });
        let o = apply(&other, v1_device);
        assert_fails(
            &o,
            "kiln::update::refused",
            &format!("unknown bundle format {format} (this kiln reads formats 2 and 3)"),
        );
        assert_untouched(v1_device, before);
    }
}

// 5. A directory that is not an OCI layout is named as such.
#[test]
fn a_directory_that_is_not_an_oci_layout_is_named_as_such() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let empty = tempfile::tempdir().unwrap();
    // The recipe's directory has files, and index.json without oci-layout is not a layout.
    let stray = site.path("stray");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::copy(v1.join("index.json"), stray.join("index.json")).unwrap();
    for dir in [empty.path(), site.f.path(), &stray] {
        let said = format!("{} is not an OCI image layout: it has no oci-layout file", dir.display());
        let o = inspect(dir);
        assert_fails(&o, "kiln::layout::invalid", &said);
        assert!(!stderr(&o).contains("os error"), "{}", stderr(&o));
        assert_eq!(stdout(&o), "");
        for (old, new) in [(v1.as_path(), dir), (dir, v1.as_path())] {
            let o = kiln().arg("diff").arg(old).arg(new).output().unwrap();
            assert_fails(&o, "kiln::layout::invalid", &said);
            assert_eq!(stdout(&o), "");
        }
        let out = out_dir(&site);
        let o = bundle(dir, &v1, &out.join("u.tar"));
        assert_fails(&o, "kiln::layout::invalid", &said);
        assert_empty(&out);
    }
}

/// What kiln says of a malformed digest `digest` in `file`, refused for `why`.
fn malformed(file: &str, what: &str, digest: &str, why: &str) -> String {
    format!("{file} has the {what} \"{digest}\", which is not sha256: and 64 lowercase hex digits ({why})")
}

// 6. Malformed digests are named with the file that holds them and why they are refused, by
// every command that reads the layout, on either side.
#[test]
fn malformed_digests_are_named_with_their_file_and_never_panic() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let v2 = site.build("v2", "v2");
    let out = out_dir(&site);
    let update = site.path("update.tar");
    run(kiln().args(["bundle", "--have"]).arg(&v1).arg("--want").arg(&v2).arg("-o").arg(&update));
    let hex_of = |_: &Path, d: &Value| d["manifests"][0]["digest"].as_str().unwrap().replace("sha256:", "");
    let check = |layout: &Path, file: &str, digest: &str, why: &str| {
        let said = malformed(file, "digest", digest, why);
        let o = inspect(layout);
        assert_fails(&o, "kiln::layout::invalid", &said);
        assert_eq!(stdout(&o), "");
        for (old, new) in [(v1.as_path(), layout), (layout, v1.as_path())] {
            let o = kiln().arg("diff").arg(old).arg(new).output().unwrap();
            assert_fails(&o, "kiln::layout::invalid", &said);
            assert_eq!(stdout(&o), "");
        }
        for (have, want) in [(v1.as_path(), layout), (layout, v2.as_path())] {
            let o = bundle(have, want, &out.join("u.tar"));
            assert_fails(&o, "kiln::layout::invalid", &said);
            assert_empty(&out);
        }
        // A device whose index.json holds the malformed digest: apply reads it to know the
        // release the layout holds, refuses before it stages anything, and leaves the layout
        // as it was. (Deeper in the layout, the digest belongs to the release being replaced,
        // which the apply never reads: the bundle names another release and is refused.)
        let before = snapshot(layout);
        let o = apply(&update, layout);
        if file == "index.json" {
            assert_fails(&o, "kiln::layout::invalid", &said);
        } else {
            assert_fails(&o, "kiln::update::refused", "it builds on release");
        }
        assert!(snapshot(layout) == before, "{} changed", layout.display());
        let beside = std::fs::read_dir(layout.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name());
        let beside: Vec<_> = beside.filter(|n| n.to_string_lossy().starts_with(".kiln-")).collect();
        assert!(beside.is_empty(), "left beside the layout: {beside:?}");
    };

    // In index.json: an algorithm kiln does not know.
    let layout = site.path("bad-index-json");
    copy_dir(&v1, &layout);
    let mut top = json_of(&layout.join("index.json"));
    top["manifests"][0]["digest"] = json!("x:abc");
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    check(&layout, "index.json", "x:abc", "kiln reads sha256 digests only, not \"x\"");

    // In an image index: uppercase hex.
    let layout = site.path("bad-image-index");
    copy_dir(&v1, &layout);
    let mut upper = String::new();
    edit_image_index(&layout, |_, index| {
        upper = format!("sha256:{}", hex_of(&layout, index).to_uppercase());
        index["manifests"][0]["digest"] = json!(upper);
    });
    assert!(upper.bytes().any(|b| b.is_ascii_uppercase()));
    let top = json_of(&layout.join("index.json"));
    let file = format!("image index blobs/sha256/{}", hex_of(&layout, &top));
    check(&layout, &file, &upper, "its hex digits must be lowercase");

    // In a manifest: too short.
    let layout = site.path("bad-manifest");
    copy_dir(&v1, &layout);
    edit_manifest(&layout, |m| m["layers"][0]["digest"] = json!("sha256:abc"));
    let top = json_of(&layout.join("index.json"));
    let index = json_of(&blob(&layout, top["manifests"][0]["digest"].as_str().unwrap()));
    let file = format!("manifest blobs/sha256/{}", hex_of(&layout, &index));
    check(&layout, &file, "sha256:abc", "it has 3 hex digits, not 64");

    // In index.json again: another algorithm, with a digest of the right length for it.
    let layout = site.path("sha512-index-json");
    copy_dir(&v1, &layout);
    let mut top = json_of(&layout.join("index.json"));
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    top["manifests"][0]["digest"] = json!(sha512);
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    // Messages quote what a file holds up to 80 characters.
    let shown = format!("{}…", &sha512[..80]);
    check(&layout, "index.json", &shown, "kiln reads sha256 digests only, not \"sha512\"");
}

/// The digest of the first platform's manifest of the layout's first image.
fn first_manifest(layout: &Path) -> String {
    let top = json_of(&layout.join("index.json"));
    let index = json_of(&blob(layout, top["manifests"][0]["digest"].as_str().unwrap()));
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

/// An image built on the layout `base/` beside the recipe.
const ON_BASE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64"
}
image "app" {
    base "oci-layout:base"
    file "/etc/app.conf" "port = 9090\n"
}
"#;

// 7. An `oci-layout:` base with a malformed digest (a layer's in its manifest, a manifest's in
// its index.json, a diff_id in its config) is refused by `kiln plan` and `kiln build`: exit 2,
// the base's code, the file that holds the digest, the digest and why; nothing is written.
#[test]
fn a_base_layout_with_a_malformed_digest_is_named_and_nothing_is_built() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let app = Fixture::new();
    app.recipe(ON_BASE);
    let base = app.path().join("base");
    let upper =
        format!("sha256:{}", first_layer(&v1).0.parse::<kiln::oci::digest::Digest>().unwrap().hex().to_uppercase());
    let cases: Vec<(&str, String, &str)> = vec![
        ("layer", "x:abc".into(), "kiln reads sha256 digests only, not \"x\""),
        ("layer", upper, "its hex digits must be lowercase"),
        ("layer", format!("sha256:{}", "a".repeat(63)), "it has 63 hex digits, not 64"),
        ("index.json", "md5:0cc175b9c0f1b6a831c399e269772661".into(), "kiln reads sha256 digests only, not \"md5\""),
        ("diff_id", "x:abc".into(), "kiln reads sha256 digests only, not \"x\""),
    ];
    for (place, digest, why) in &cases {
        let _ = std::fs::remove_dir_all(&base);
        copy_dir(&v1, &base);
        let said = match *place {
            "layer" => {
                edit_manifest(&base, |m| m["layers"][0]["digest"] = json!(digest));
                let file = format!("manifest {}", first_manifest(&base).replace("sha256:", "blobs/sha256/"));
                malformed(&file, "digest", digest, why)
            }
            "index.json" => {
                let mut top = json_of(&base.join("index.json"));
                top["manifests"][0]["digest"] = json!(digest);
                std::fs::write(base.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
                malformed("index.json", "digest", digest, why)
            }
            _ => {
                let mut config = String::new();
                edit_manifest(&base, |m| {
                    let mut c = json_of(&blob(&base, m["config"]["digest"].as_str().unwrap()));
                    c["rootfs"]["diff_ids"][0] = json!(digest);
                    let (d, size) = put_blob(&base, &serde_json::to_vec(&c).unwrap());
                    config = d.replace("sha256:", "blobs/sha256/");
                    m["config"]["digest"] = json!(d);
                    m["config"]["size"] = json!(size);
                });
                malformed(&format!("config {config}"), "diff_id", digest, why)
            }
        };
        let said = format!("cannot use the base: ./base is not a valid OCI image layout: {said}");
        let before = snapshot(app.path());
        let o = kiln().current_dir(app.path()).env("KILN_CACHE_DIR", app.cache_path()).arg("plan").output().unwrap();
        assert_fails(&o, "kiln::plan::base_layout", &said);
        assert!(stderr(&o).contains("kiln.kdl:6:10"), "the base's line: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "no plan is printed");
        let o = app.build();
        assert_fails(&o, "kiln::plan::base_layout", &said);
        assert_eq!(stdout(&o), "");
        assert!(!app.out().exists(), "{place}: an image was written");
        assert!(snapshot(app.path()) == before, "{place}: something was written beside the recipe");
    }
}

// 8. A bundle naming a malformed digest (in its kiln-bundle.json, its index.json or a member's
// name) is refused with the digest and why, and the layout is left as it was.
#[test]
fn apply_names_a_malformed_digest_in_a_bundle_and_leaves_the_layout() {
    let site = Site::new();
    let v1 = site.build("v1", "v1");
    let v2 = site.build("v2", "v2");
    let work = tempfile::tempdir().unwrap();
    let update = work.path().join("update.tar");
    run(kiln().args(["bundle", "--have"]).arg(&v1).arg("--want").arg(&v2).arg("-o").arg(&update));
    let device = site.path("device");
    copy_dir(&v1, &device);
    let before = snapshot(&device);
    let bad = work.path().join("bad.tar");
    let refused = |said: &str| {
        let o = apply(&bad, &device);
        assert_fails(&o, "kiln::update::refused", said);
        assert_eq!(stdout(&o), "");
        assert_untouched(&device, &before);
    };

    // kiln-bundle.json: the release it builds on, and a blob it says it carries.
    with_manifest(&update, &bad, |m| m["base"] = json!("x:abc"));
    refused(
        "kiln-bundle.json names the digest \"x:abc\", which is not sha256: and 64 lowercase hex digits (kiln reads sha256 digests only, not \"x\")",
    );
    let mut upper = String::new();
    with_manifest(&update, &bad, |m| {
        upper = m["provides"][0].as_str().unwrap().to_uppercase().replace("SHA256:", "sha256:");
        m["provides"][0] = json!(upper);
    });
    refused(&format!(
        "kiln-bundle.json names the digest \"{upper}\", which is not sha256: and 64 lowercase hex digits (its hex digits must be lowercase)"
    ));

    // The index.json it installs, its manifest naming the changed index.json.
    let mut m = members(&update);
    let mut index: Value = serde_json::from_slice(&m[1].1).unwrap();
    assert_eq!(m[1].0, "index.json");
    index["manifests"][0]["digest"] = json!("sha256:abc");
    m[1].1 = serde_json::to_vec(&index).unwrap();
    let mut manifest: Value = serde_json::from_slice(&m[0].1).unwrap();
    manifest["index_json"] = json!(kiln::oci::digest::sha256_digest(&m[1].1));
    m[0].1 = serde_json::to_vec(&manifest).unwrap();
    write_tar(&bad, &m);
    refused(&format!(
        "its index.json cannot be read: {} is not a valid OCI image layout: {}",
        device.display(),
        malformed("the bundle's index.json", "digest", "sha256:abc", "it has 3 hex digits, not 64")
    ));

    // A blob whose name is not its digest's hex.
    let mut m = members(&update);
    let i = m.iter().position(|(n, _)| n.starts_with("blobs/sha256/")).unwrap();
    m[i].0 = m[i].0.to_uppercase().replace("BLOBS/SHA256/", "blobs/sha256/");
    write_tar(&bad, &m);
    refused(&format!("bad blob name \"{}\" (its hex digits must be lowercase)", m[i].0));
}

/// Lists `manifest` in the layout's index.json as an artifact of `kind`.
fn attach_artifact(layout: &Path, kind: &str, manifest: &[u8]) {
    let (digest, size) = put_blob(layout, manifest);
    let mut index = json_of(&layout.join("index.json"));
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": kind,
        "digest": digest,
        "size": size,
    }));
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn forged_or_damaged_signatures_and_attestations_are_named_never_trusted() {
    let site = Site::new();
    let layout = site.build("out", "v1");
    run(kiln().current_dir(site.f.path()).args(["keygen", "-q", "--out", "k"]));
    let (key, public) = (site.path("k.key"), site.path("k.pub"));
    let check = |l: &Path| kiln().arg("verify-signature").arg(l).arg("--key").arg(&public).output().unwrap();
    let sig_type = "application/vnd.dev.cosign.artifact.sig.v1+json";
    let subject = json_of(&layout.join("index.json"))["manifests"][0].clone();
    let subject = json!({"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]});
    let (empty, _) = put_blob(&layout, b"{}");

    // A signature whose payload names another digest, with a valid-looking annotation.
    let copy = site.path("forged");
    copy_dir(&layout, &copy);
    let payload = br#"{"critical":{"identity":{"docker-reference":"site"},"image":{"docker-manifest-digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"type":"cosign container image signature"},"optional":null}"#;
    let (p, psize) = put_blob(&copy, payload);
    put_blob(&copy, b"{}");
    let forged = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": sig_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": p, "size": psize,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDnot-a-signature"}}],
        "subject": subject,
    });
    attach_artifact(&copy, sig_type, &serde_json::to_vec(&forged).unwrap());
    let o = check(&copy);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("signs sha256:0000"), "{}", stdout(&o));

    // An artifact listed in index.json whose manifest is not there, or is not JSON: exit 2.
    for (name, bytes) in [("missing", None), ("garbage", Some(&b"\xff\xfe not json"[..]))] {
        let copy = site.path(name);
        copy_dir(&layout, &copy);
        let manifest = bytes.map(<[u8]>::to_vec).unwrap_or_else(|| b"{\"never\":\"written\"}".to_vec());
        attach_artifact(&copy, sig_type, &manifest);
        if bytes.is_none() {
            std::fs::remove_file(blob(&copy, &kiln::oci::digest::sha256_digest(&manifest))).unwrap();
        }
        let before = snapshot(&copy);
        let o = check(&copy);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        let o = kiln().arg("sign").arg(&copy).arg("--key").arg(&key).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert_untouched(&copy, &before);
    }
}
