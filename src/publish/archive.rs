//! A release as one tar, for tools that load files: an `oci-archive` is the whole layout
//! (`skopeo copy oci-archive:FILE`, `podman load`); a `docker-archive` is one platform of one
//! image as `docker load` reads it, and an OCI layout of that manifest, as Docker 25 saves it.
//!
//! Docker 20.10 tells compression by magic bytes and knows gzip, bzip2 and xz, not zstd: it
//! reads a zstd layer as a tar and fails (`archive/tar: invalid tar header`). So a docker
//! archive carries each layer as its plain tar named by its diff_id, as `docker save` does
//! (gzip ones too, each checked against its diff_id as it is written), and its manifest names
//! those. Both archives are deterministic, written through [`TarPublisher`]: every blob is
//! checked against its digest, and nothing is at the destination unless complete.

use super::TarPublisher;
use crate::error::{BuildError, StoreError};
use crate::oci::annotation::ANNOTATION_REF_NAME;
use crate::oci::canonical;
use crate::oci::digest::{Digest, HashingReader};
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::store::walk::{self, Blob, PlatformImage, check_read, check_size, invalid, shown};
use crate::store::{BlobSink, BlobSource, OCI_LAYOUT, Publisher};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What an archive holds: its size, the blobs it carries (each once) and, for a docker
/// archive, its manifest (the image's, naming plain tars) and its `RepoTags`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveSummary {
    pub file: PathBuf,
    pub bytes: u64,
    pub blobs: usize,
    pub manifest: Option<Digest>,
    pub tags: Vec<String>,
}

fn summary(file: &Path, blobs: usize, manifest: Option<Digest>, tags: Vec<String>) -> ArchiveSummary {
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    ArchiveSummary { file: file.to_path_buf(), bytes, blobs, manifest, tags }
}

/// Writes the whole release `src` as an oci-archive at `file`: `oci-layout`, every blob its
/// `index.json` reaches (each once, parents before what they name, in the order they name
/// it), then exactly the source's `index.json`.
pub fn write_oci_archive(src: &dyn BlobSource, file: &Path) -> Result<ArchiveSummary, StoreError> {
    let (index_json, _) = src.index()?;
    let blobs = reached(src, &index_json)?;
    let tar = Box::new(TarPublisher::create(file, &[("oci-layout", OCI_LAYOUT)])?);
    for b in &blobs {
        tar.copy_blob(src, (&b.digest, b.size))?;
    }
    tar.publish(&index_json)?;
    Ok(summary(file, blobs.len(), None, Vec::new()))
}

/// How the media types of indexes and manifests end: blobs whose descriptors name more blobs.
const NAMES_BLOBS: [&str; 4] = [".index.v1+json", ".manifest.v1+json", ".list.v2+json", ".manifest.v2+json"];

/// Every blob `index_json` reaches, depth first, each once.
fn reached(src: &dyn BlobSource, index_json: &[u8]) -> Result<Vec<Blob>, StoreError> {
    let mut todo: Vec<Blob> = descriptors(src.location(), "index.json", index_json)?.into_iter().rev().collect();
    let (mut seen, mut out) = (BTreeSet::new(), Vec::new());
    while let Some(b) = todo.pop() {
        if !seen.insert(b.digest.clone()) {
            continue;
        }
        if NAMES_BLOBS.iter().any(|s| b.media_type.ends_with(s)) {
            let file = format!("blob {}", b.digest.layout_path().display());
            todo.extend(descriptors(src.location(), &file, &src.read_blob(&b)?)?.into_iter().rev());
        }
        out.push(b);
    }
    Ok(out)
}

/// The descriptors of an index or a manifest (`file` names it): `manifests`, `config`,
/// `layers`, in that order. A `subject` names a blob above, not one the document holds.
fn descriptors(dir: &Path, file: &str, bytes: &[u8]) -> Result<Vec<Blob>, StoreError> {
    let v: Value = walk::parse_json(dir, file, bytes)?;
    let list = |key| v.get(key).and_then(Value::as_array).into_iter().flatten();
    let config = v.get("config").filter(|c| c.is_object());
    let one = |d: &Value| {
        let digest = d.get("digest").and_then(Value::as_str).unwrap_or_default();
        let digest = digest.parse().map_err(|e| invalid(dir, format!("{file} has the digest {e}")))?;
        let size = d.get("size").and_then(Value::as_u64);
        let size = size.ok_or_else(|| invalid(dir, format!("{file} names {digest} without a size")))?;
        let media_type = d.get("mediaType").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(Blob { digest, size, media_type })
    };
    list("manifests").chain(config).chain(list("layers")).map(one).collect()
}

/// The caller's tags (`NAME:latest` for the image's ref name when none are given), each as
/// `RepoTags` holds it (`:latest` added) and as docker reads it; refused, as a write of
/// `file`, unless each is `[host/]repo[:tag]`.
fn tags_for(name: &str, given: &[String], file: &Path) -> Result<Vec<(String, Reference)>, StoreError> {
    let refuse = |why: String| StoreError::io("write", file)(io::Error::new(io::ErrorKind::InvalidInput, why));
    if given.is_empty() && name.parse::<Digest>().is_ok() {
        return Err(refuse(format!("the image {name} has no {ANNOTATION_REF_NAME}; give the tags to load it as")));
    }
    let default = [format!("{name}:latest")];
    let parse = |t: &String| match Reference::parse(t) {
        Ok(r) if r.digest.is_none() && !t.contains("://") => match r.tag {
            Some(_) => Ok((t.clone(), r)),
            None => Ok((format!("{t}:latest"), r.with_tag("latest"))),
        },
        Ok(_) => Err(refuse(format!("{} names a digest or a scheme, not a repository:tag", shown(t)))),
        Err(e) => Err(refuse(e.to_string())),
    };
    (if given.is_empty() { &default[..] } else { given }).iter().map(parse).collect()
}

/// The image named `image` (or the only one) and its manifest for `platform`.
fn choose(src: &dyn BlobSource, image: Option<&str>, platform: &str) -> Result<(String, PlatformImage), StoreError> {
    let dir = src.location();
    let mut images = walk::images_present(src, image, &[])?;
    if images.len() > 1 {
        let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
        return Err(invalid(dir, format!("it holds the images {}; name the one to archive", names.join(", "))));
    }
    let img = images.pop().ok_or_else(|| invalid(dir, "it holds no image"))?;
    let same = |p: &str| p == platform || Platform::parse(p).is_some_and(|p| Platform::parse(platform) == Some(p));
    let (name, held) = (img.name, if img.absent.iter().any(|p| same(p)) { " (its index names one)" } else { "" });
    match img.platforms.into_iter().find(|p| same(&p.platform)) {
        Some(p) => Ok((name, p)),
        None => Err(invalid(dir, format!("image `{name}` has no {platform} manifest{held}"))),
    }
}

/// The config's `rootfs.diff_ids`, one per layer of the manifest.
fn diff_ids(src: &dyn BlobSource, p: &PlatformImage) -> Result<Vec<Digest>, StoreError> {
    let file = format!("config {}", p.config.digest.layout_path().display());
    let bad = |why: String| invalid(src.location(), format!("{file}: {why}"));
    let config: Value = serde_json::from_slice(&src.read_blob(&p.config)?).map_err(|e| bad(e.to_string()))?;
    let ids = config.pointer("/rootfs/diff_ids").and_then(Value::as_array).ok_or_else(|| bad("no diff_ids".into()))?;
    let parse = |d: &Value| d.as_str().unwrap_or_default().parse().map_err(|e| bad(format!("the diff_id {e}")));
    let ids: Vec<Digest> = ids.iter().map(parse).collect::<Result<_, _>>()?;
    if ids.len() != p.layers.len() {
        return Err(bad(format!("{} diff_ids for the manifest's {} layers", ids.len(), p.layers.len())));
    }
    Ok(ids)
}

/// Where a docker archive holds a blob.
fn member(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// A [`BlobSink`]'s error as the store's: what it is when it is one.
fn store_error(file: &Path) -> impl Fn(BuildError) -> StoreError + '_ {
    move |e| match e {
        BuildError::Store(e) => e,
        other => StoreError::io("write", file)(io::Error::other(other.to_string())),
    }
}

/// Streams layer `l` to `w` as its plain tar, checking the blob against its digest.
fn unpack(src: &dyn BlobSource, l: &Blob, w: &mut dyn Write) -> Result<(), StoreError> {
    check_size(src, &l.digest, l.size)?;
    let name = src.blob_name(&l.digest);
    let mut r = HashingReader::new(src.open_blob(&l.digest)?.take(l.size));
    let unpacked = match &l.media_type {
        t if t.ends_with("gzip") => io::copy(&mut flate2::read::MultiGzDecoder::new(&mut r), w),
        t if t.ends_with("zstd") => zstd::stream::read::Decoder::new(&mut r).and_then(|mut z| io::copy(&mut z, w)),
        _ => io::copy(&mut r, w),
    };
    // The digest first: a blob that is not the one named is refused as such, not as bad data.
    io::copy(&mut r, &mut io::sink()).map_err(StoreError::io("read", &name))?;
    let (_, actual, len) = r.finish();
    check_read(src.location(), &l.digest, l.size, (&actual, len))?;
    unpacked.map(drop).map_err(StoreError::io("decompress", name))
}

/// Writes layer `l` into `tar` as the plain tar `diff_id` names, refused unless its bytes
/// hash to that; returns the tar's size.
fn write_layer(src: &dyn BlobSource, tar: &TarPublisher, l: &Blob, diff_id: &Digest) -> Result<u64, StoreError> {
    let t =
        tar.write_blob(&mut |w| unpack(src, l, w).map_err(BuildError::from)).map_err(store_error(&tar.location()))?;
    if t.digest != *diff_id {
        let what = format!("layer {} unpacks to {}; its config's diff_id is {diff_id}", l.digest, t.digest);
        return Err(invalid(src.location(), what));
    }
    Ok(t.size)
}

/// The image's manifest naming the plain tars (`plain`: digest and size per layer): each
/// layer's digest, size and media type replaced; the very bytes when all were plain already.
fn plain_manifest(src: &dyn BlobSource, p: &PlatformImage, plain: &[(Digest, u64)]) -> Result<Vec<u8>, StoreError> {
    let bytes = src.read_blob(&p.blob)?;
    if p.layers.iter().zip(plain).all(|(l, (d, _))| l.digest == *d) {
        return Ok(bytes);
    }
    let file = format!("manifest {}", p.blob.digest.layout_path().display());
    let mut v: Value = walk::parse_json(src.location(), &file, &bytes)?;
    let layers = v.get_mut("layers").and_then(Value::as_array_mut).into_iter().flatten();
    for (l, (digest, size)) in layers.zip(plain) {
        let Some(l) = l.as_object_mut() else { continue };
        let media_type = l.get("mediaType").and_then(Value::as_str).unwrap_or_default();
        let plain_type = ["+gzip", "+zstd", ".gzip", ".zstd"].iter().find_map(|s| media_type.strip_suffix(s));
        let plain_type = plain_type.unwrap_or(media_type).to_string();
        l.insert("mediaType".into(), plain_type.into());
        l.insert("digest".into(), digest.to_string().into());
        l.insert("size".into(), (*size).into());
    }
    Ok(canonical::to_vec(&v))
}

/// `index.json` of a docker archive: the one manifest, once per tag, annotated as
/// `docker save` does.
fn docker_index(p: &PlatformImage, (digest, size): (&Digest, usize), tags: &[(String, Reference)]) -> Vec<u8> {
    let one = |(_, t): &(String, Reference)| {
        let annotations = json!({"io.containerd.image.name": t.to_string(), ANNOTATION_REF_NAME: t.tag});
        let mut d = json!({"mediaType": p.blob.media_type, "digest": digest, "size": size, "annotations": annotations});
        if let Some(platform) = p.desc.platform() {
            d["platform"] = serde_json::to_value(platform).unwrap_or_default();
        }
        d
    };
    let manifests: Vec<Value> = tags.iter().map(one).collect();
    canonical::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}))
}

/// Writes the `platform` manifest (`os/arch[/variant]`) of `image` (the layout's only one
/// when `None`) as a docker archive at `file`, tagged `tags` (`repo:tag`; empty: the image's
/// ref name, `:latest`). Every layer is carried as its plain tar, checked against the config's
/// diff_id.
pub fn write_docker_archive(
    src: &dyn BlobSource,
    image: Option<&str>,
    platform: &str,
    tags: &[String],
    file: &Path,
) -> Result<ArchiveSummary, StoreError> {
    let (name, p) = choose(src, image, platform)?;
    let tags = tags_for(&name, tags, file)?;
    let diff_ids = diff_ids(src, &p)?;
    let repo_tags: Vec<String> = tags.iter().map(|(t, _)| t.clone()).collect();
    let layers: Vec<String> = diff_ids.iter().map(member).collect();
    let docker =
        canonical::to_vec(&json!([{"Config": member(&p.config.digest), "RepoTags": repo_tags, "Layers": layers}]));
    let tar = Box::new(TarPublisher::create(file, &[("oci-layout", OCI_LAYOUT), ("manifest.json", &docker)])?);
    tar.copy_blob(src, (&p.config.digest, p.config.size))?;
    let mut written = BTreeMap::new();
    for (l, diff_id) in p.layers.iter().zip(&diff_ids) {
        if !written.contains_key(diff_id) {
            written.insert(diff_id.clone(), write_layer(src, &tar, l, diff_id)?);
        }
    }
    let plain: Vec<_> = diff_ids.iter().map(|d| (d.clone(), written.get(d).copied().unwrap_or_default())).collect();
    let manifest = plain_manifest(src, &p, &plain)?;
    let digest = Digest::of(&manifest);
    tar.write_bytes(&manifest).map_err(store_error(file))?;
    tar.publish(&docker_index(&p, (&digest, manifest.len()), &tags))?;
    Ok(summary(file, written.len() + 2, Some(digest), repo_tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LayoutDir;
    use std::fs;
    use tempfile::TempDir;

    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    /// Writes `bytes` as a blob of the layout `dir`; its descriptor.
    fn put(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join(Digest::of(bytes).layout_path()), bytes).unwrap();
        json!({"mediaType": media_type, "digest": Digest::of(bytes), "size": bytes.len()})
    }

    fn tar_of(body: &[u8]) -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        t.append_data(&mut h, "etc/f", body).unwrap();
        t.into_inner().unwrap()
    }

    /// A layout and a directory for archives: one index listed under each of `names`, of amd64
    /// and arm/v7, each a shared gzip layer under its own zstd one (amd64's diff_id a lie when
    /// asked); and the arm layers' tars, and its zstd blob's digest.
    fn layout(lie: bool, names: &[&str]) -> (TempDir, TempDir, [Vec<u8>; 2], Digest) {
        let (root, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (dir, shared) = (root.path(), tar_of(b"hi\n"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&shared).unwrap();
        let shared_gz = put(dir, "application/vnd.oci.image.layer.v1.tar+gzip", &gz.finish().unwrap());
        let (mut manifests, mut top) = (Vec::new(), Value::Null);
        for (arch, variant) in [("amd64", None), ("arm", Some("v7"))] {
            let zst = zstd::encode_all(&tar_of(arch.as_bytes())[..], 3).unwrap();
            top = put(dir, "application/vnd.oci.image.layer.v1.tar+zstd", &zst);
            let diff = if lie && arch == "amd64" { Digest::of(b"other") } else { Digest::of(&tar_of(arch.as_bytes())) };
            let rootfs = json!({"type": "layers", "diff_ids": [Digest::of(&shared), diff]});
            let config = json!({"architecture": arch, "os": "linux", "rootfs": rootfs});
            let config = put(dir, "application/vnd.oci.image.config.v1+json", &canonical::to_vec(&config));
            let m = json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [shared_gz, top]});
            let mut d = put(dir, MANIFEST, &canonical::to_vec(&m));
            d["platform"] = json!({"os": "linux", "architecture": arch, "variant": variant});
            manifests.push(d);
        }
        let ref_name = |n| json!({ANNOTATION_REF_NAME: n});
        let i = put(dir, INDEX, &canonical::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})));
        let named =
            |n| json!({"mediaType": INDEX, "digest": i["digest"], "size": i["size"], "annotations": ref_name(n)});
        let top_level = json!({"schemaVersion": 2, "manifests": names.iter().map(named).collect::<Vec<_>>()});
        fs::write(dir.join("index.json"), canonical::to_vec(&top_level)).unwrap();
        fs::write(dir.join("oci-layout"), OCI_LAYOUT).unwrap();
        (root, out, [shared, tar_of(b"arm")], serde_json::from_value(top["digest"].clone()).unwrap())
    }

    /// Writes an archive twice, checks both are the same bytes and that each member under
    /// `blobs/` is the blob its name says; the summary and the members.
    fn twice(out: &TempDir, write: impl Fn(&Path) -> ArchiveSummary) -> (ArchiveSummary, Vec<String>, Vec<Vec<u8>>) {
        let (a, b) = (out.path().join("a.tar"), out.path().join("b.tar"));
        let (summary, _) = (write(&a), write(&b));
        assert_eq!((fs::read(&a).unwrap(), summary.bytes), (fs::read(&b).unwrap(), fs::metadata(&a).unwrap().len()));
        let read = |e: io::Result<tar::Entry<'_, fs::File>>| {
            let (mut e, mut bytes) = (e.unwrap(), Vec::new());
            e.read_to_end(&mut bytes).unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            assert!(!name.starts_with("blobs/") || name == member(&Digest::of(&bytes)), "{name}");
            (name, bytes)
        };
        let (names, bytes) = tar::Archive::new(fs::File::open(&a).unwrap()).entries().unwrap().map(read).unzip();
        (summary, names, bytes)
    }

    #[test]
    fn an_oci_archive_is_the_whole_layout_with_each_blob_once_the_same_bytes_each_time() {
        let (dir, out, _, _) = layout(false, &["app"]);
        let src = LayoutDir::new(dir.path());
        let (summary, names, bytes) = twice(&out, |f| write_oci_archive(&src, f).unwrap());
        assert_eq!((summary.blobs, names.len(), &*names[0], &*names[9]), (8, 10, "oci-layout", "index.json"));
        assert_eq!(bytes[9], fs::read(dir.path().join("index.json")).unwrap());
        let (_, index) = src.index().unwrap();
        assert_eq!(names[1], member(&Digest::try_from(index.manifests()[0].digest()).unwrap()));
    }

    #[test]
    fn a_docker_archive_is_one_platform_with_plain_tars_named_by_their_diff_ids() {
        let (dir, out, tars, _) = layout(false, &["app"]);
        let src = LayoutDir::new(dir.path());
        let tags = ["reg.example:5000/team/app:1.0".to_string(), "app".to_string()];
        let (summary, names, bytes) =
            twice(&out, |f| write_docker_archive(&src, Some("app"), "linux/arm/v7", &tags, f).unwrap());
        assert_eq!((names.len(), &*names[0], &*names[1], &*names[6]), (7, "oci-layout", "manifest.json", "index.json"));
        assert_eq!(bytes[3..5], tars, "the layers are their plain tars");
        let manifest = summary.manifest.unwrap();
        assert_eq!(names[5], member(&manifest));
        let docker = json!([{"Config": names[2], "Layers": names[3..5], "RepoTags": [tags[0], "app:latest"]}]);
        assert_eq!(bytes[1], canonical::to_vec(&docker));
        let index: Value = serde_json::from_slice(&bytes[6]).unwrap();
        let at = |i, key| index.pointer(&format!("/manifests/{i}/{key}")).and_then(Value::as_str).map(String::from);
        assert_eq!(at(1, "annotations/io.containerd.image.name").unwrap(), "docker.io/library/app:latest");
        assert_eq!(at(0, "annotations/io.containerd.image.name").unwrap(), tags[0]);
        assert_eq!((at(0, "platform/variant").unwrap(), at(0, "digest").unwrap()), ("v7".into(), manifest.to_string()));
        let plain: Value = serde_json::from_slice(&bytes[5]).unwrap();
        assert_eq!(plain.pointer("/layers/1/mediaType"), Some(&"application/vnd.oci.image.layer.v1.tar".into()));
    }

    #[test]
    fn a_blob_that_is_not_its_digest_or_its_diff_id_is_refused_and_nothing_is_written() {
        let (dir, out, _, top) = layout(true, &["app"]);
        let (src, file) = (LayoutDir::new(dir.path()), out.path().join("x.tar"));
        let e = write_docker_archive(&src, None, "linux/amd64", &[], &file).unwrap_err().to_string();
        assert!(e.contains("unpacks to") && e.contains("its config's diff_id"), "{e}");
        let mut bytes = fs::read(dir.path().join(top.layout_path())).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(dir.path().join(top.layout_path()), bytes).unwrap();
        let e = write_docker_archive(&src, None, "linux/arm/v7", &[], &file).unwrap_err().to_string();
        assert!(e.contains(&format!("blob {top} has digest")), "{e}");
        assert!(write_oci_archive(&src, &file).unwrap_err().to_string().contains("has digest"));
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0, "no file, no temporary file");
    }

    #[test]
    fn what_to_archive_is_named_when_the_layout_holds_several_and_tags_are_docker_s() {
        let (dir, out, _, _) = layout(false, &["app", "b"]);
        let (src, file) = (LayoutDir::new(dir.path()), out.path().join("x.tar"));
        let refused = |image, platform, tags: &[String]| {
            write_docker_archive(&src, image, platform, tags, &file).unwrap_err().to_string()
        };
        assert!(refused(None, "linux/amd64", &[]).contains("it holds the images app, b; name the one"));
        assert!(refused(Some("b"), "linux/arm64", &[]).contains("image `b` has no linux/arm64 manifest"));
        for bad in ["App:1", "app:-x", "/app", "a:b:c"] {
            assert!(refused(Some("b"), "linux/amd64", &[bad.into()]).contains("is not an image reference"), "{bad}");
        }
        assert!(refused(Some("b"), "linux/amd64", &[format!("a@{}", Digest::of(b""))]).contains("names a digest"));
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
        assert!(write_docker_archive(&src, Some("b"), "linux/amd64", &[], &file).is_ok());
    }
}
