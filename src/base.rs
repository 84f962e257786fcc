//! Bases: what an image's first layers are.
//!
//! `distroless/*` bases are assembled from the pinned Debian packages' files plus a few
//! generated ones (passwd, group, nsswitch.conf, os-release, the CA bundle), split so that
//! everything the same on every architecture lands in layers shared byte-for-byte by every
//! platform. `oci-layout:` bases reuse another image's layers as they are.

use crate::inputs::debian::{self, Flavour, lock::Lock};
use crate::oci::config::{ConfigPlan, DEFAULT_PATH};
use crate::oci::digest::Digest;
use crate::oci::entry::{Entry, EntryKind, Prebuilt};
use crate::oci::platform::Platform;
use crate::store::{BlobSource, LayoutDir, walk};
use oci_spec::image::ImageConfiguration;
use std::collections::BTreeMap;
use std::path::Path;

/// The Debian side of planning: the lock and each pinned package's files.
#[derive(Debug, Clone)]
pub struct DebianInputs {
    pub lock: Lock,
    /// Entries by (package, Debian architecture).
    pub contents: BTreeMap<(String, String), Vec<Entry>>,
}

/// A layer of a base, before ids are computed.
pub struct BaseLayer {
    /// Short and stable (`base libc6`): it is recorded in every image's layer plan.
    pub key: String,
    pub name: String,
    pub created_by: String,
    pub entries: Vec<Entry>,
}

fn generated(path: &str, mode: u32, uid: u32, content: Option<&str>) -> Entry {
    let kind = if content.is_some() { EntryKind::File } else { EntryKind::Dir };
    Entry {
        size: content.map(|c| c.len() as u64),
        sha256: content.map(|c| crate::oci::digest::sha256_hex(c.as_bytes())),
        content: content.map(str::to_string),
        from: Some("generated".into()),
        ..Entry::new(path, kind, mode, uid, uid)
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";
const NSSWITCH: &str = "passwd:         files\ngroup:          files\nshadow:         files\nhosts:          files dns\nnetworks:       files\nprotocols:      files\nservices:       files\nethers:         files\nrpc:            files\n";

/// The files kiln writes itself: users, groups, name service, os-release, /tmp and homes.
fn system_files(lock: &Lock) -> Vec<Entry> {
    let version_id = lock.release.version.split('.').next().unwrap_or_default().to_string();
    let os_release = format!(
        "PRETTY_NAME=\"Distroless (kiln) Debian GNU/Linux {version_id} ({codename})\"\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"{version_id}\"\nVERSION=\"{version} ({codename})\"\nVERSION_CODENAME={codename}\nHOME_URL=\"https://www.debian.org/\"\n",
        codename = lock.release.codename,
        version = lock.release.version,
    );
    vec![
        generated("/etc/", 0o755, 0, None),
        generated("/etc/group", 0o644, 0, Some(GROUP)),
        generated("/etc/nsswitch.conf", 0o644, 0, Some(NSSWITCH)),
        generated("/etc/os-release", 0o644, 0, Some(&os_release)),
        generated("/etc/passwd", 0o644, 0, Some(PASSWD)),
        generated("/home/", 0o755, 0, None),
        generated("/home/nonroot/", 0o700, 65532, None),
        generated("/root/", 0o700, 0, None),
        generated("/tmp/", 0o1777, 0, None),
    ]
}

/// The packages (name, Debian architecture) a base needs on a platform.
pub fn wanted(flavour: Flavour, p: Platform) -> Vec<(String, String)> {
    flavour.packages().into_iter().map(|n| (n.to_string(), debian::debian_arch(p).to_string())).collect()
}

/// The layers of a distroless base for one platform, least volatile first: system files (with
/// netbase, media types, the CA bundle and time zones), then each library.
pub fn distroless_layers(flavour: Flavour, p: Platform, inputs: &DebianInputs) -> Result<Vec<BaseLayer>, String> {
    let arch = debian::debian_arch(p);
    let pkg = |name: &str| -> Result<(Vec<Entry>, String), String> {
        let locked = inputs.lock.find(name, arch).ok_or_else(|| format!("kiln.lock pins no {name} for {arch}"))?;
        let entries = inputs
            .contents
            .get(&(name.to_string(), arch.to_string()))
            .cloned()
            .ok_or_else(|| format!("{name} for {arch} was not fetched"))?;
        Ok((entries, format!("{} {}", locked.name, locked.version)))
    };
    let mut system = system_files(&inputs.lock);
    let mut versions = Vec::new();
    // Everything the same on every architecture goes into one layer shared by all platforms:
    // CA certificates and time zones change a few times a year, like these small files, and
    // each layer fewer takes about 250 bytes off the metadata every update carries.
    for name in ["netbase", "media-types", "ca-certificates", "tzdata"] {
        let (entries, v) = pkg(name)?;
        system.extend(entries);
        versions.push(v);
    }
    let mut layers = vec![BaseLayer {
        key: "base system".into(),
        name: format!("{}: system files", flavour.name()),
        created_by: format!("kiln: {} system files, {}", flavour.name(), versions.join(", ")),
        entries: system,
    }];
    for name in flavour.arch_packages() {
        let (entries, v) = pkg(name)?;
        layers.push(BaseLayer {
            key: format!("base {name}"),
            name: format!("{}: {name}", flavour.name()),
            created_by: format!("kiln: {} {v}", flavour.name()),
            entries,
        });
    }
    Ok(layers)
}

/// Runtime configuration a distroless base brings: the CA bundle's location. It sets no user:
/// kiln's non-root default, 65532:65532, is distroless's `nonroot`.
pub fn distroless_config(config: &mut ConfigPlan) {
    if !config.env.iter().any(|e| e.starts_with("SSL_CERT_FILE=")) {
        config.env.push("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".into());
    }
}

/// One platform's image from an OCI layout base.
pub struct LayoutBase {
    pub layers: Vec<Prebuilt>,
    pub config: ImageConfiguration,
}

fn platform_matches(desc: &oci_spec::image::Descriptor, p: Platform) -> bool {
    desc.platform().as_ref().is_some_and(|pl| {
        let variant_ok = match p {
            // arm images sometimes omit the variant; anything but v7 is another platform.
            Platform::LinuxArmV7 => matches!(pl.variant().as_deref(), None | Some("v7")),
            _ => true,
        };
        pl.os().to_string() == p.os() && pl.architecture().to_string() == p.arch() && variant_ok
    })
}

/// Finds `platform`'s image in an OCI layout (by `org.opencontainers.image.ref.name` tag, or
/// the only image) and reads its layers and config.
pub fn from_layout(layout: &Path, rel: &str, tag: Option<&str>, p: Platform) -> Result<LayoutBase, String> {
    from_source(&LayoutDir::new(layout), (rel, None), tag, p)
}

/// The image index or manifest of a pulled base, as the cache `cas` holds it.
pub fn pulled_top(cas: &Path, r: &crate::oci::reference::Reference) -> Result<walk::Blob, String> {
    let Some(digest) = &r.digest else { return Err(format!("{r} names no digest")) };
    let path = crate::store::blob_path(cas, digest);
    let bytes =
        std::fs::read(&path).map_err(|_| format!("{r} is not in kiln's cache: it is pulled before planning"))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{r}: {e}"))?;
    let media_type = match v["mediaType"].as_str() {
        Some(m) => m.to_string(),
        None if v.get("manifests").is_some() => "application/vnd.oci.image.index.v1+json".into(),
        None => "application/vnd.oci.image.manifest.v1+json".into(),
    };
    Ok(walk::Blob { digest: digest.clone(), size: bytes.len() as u64, media_type })
}

/// Reads `platform`'s image of a base pulled from the registry `reference` (by digest) into
/// the cache directory `cas`.
pub fn from_registry(cas: &Path, top: walk::Blob, reference: &str, p: Platform) -> Result<LayoutBase, String> {
    from_source(&crate::store::cas::PulledImage::new(cas, top, reference), ("", Some(reference)), None, p)
}

/// The base image of `src` for one platform; `rel` and `registry` are where its layers are
/// read from at build time, as [`Prebuilt`] records it.
fn from_source(
    src: &dyn BlobSource,
    (rel, registry): (&str, Option<&str>),
    tag: Option<&str>,
    p: Platform,
) -> Result<LayoutBase, String> {
    let layout = src.location();
    let rel = if rel.is_empty() { registry.unwrap_or_default() } else { rel };
    let mut images = walk::images(src, None).map_err(|e| e.to_string())?;
    if let Some(t) = tag {
        images.retain(|i| i.name == t);
        if images.is_empty() {
            return Err(format!("no image tagged `{t}` in {}", layout.display()));
        }
    }
    // Several single-platform manifests side by side are one image; several indexes are not.
    let (image, manifest) = match images.as_slice() {
        [] => return Err(format!("{} holds no image", layout.display())),
        [one] if one.index.is_some() => (
            one,
            one.platforms
                .iter()
                .find(|m| platform_matches(&m.desc, p))
                .ok_or_else(|| format!("the base in {} has no {p} image", layout.display()))?,
        ),
        [one] => (one, &one.platforms[0]),
        several if several.iter().all(|i| i.index.is_none()) => several
            .iter()
            .flat_map(|i| i.platforms.iter().map(move |m| (i, m)))
            .find(|(_, m)| platform_matches(&m.desc, p))
            .ok_or_else(|| format!("no {p} image in {}", layout.display()))?,
        _ => return Err(format!("{} holds several images; name one with oci-layout:{rel}:TAG", layout.display())),
    };
    let config_bytes = src.read_blob(&manifest.config).map_err(|e| e.to_string())?;
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| format!("the base's config: {e}"))?;
    if config.architecture().to_string() != p.arch() {
        return Err(format!("the base image for {p} is built for {}", config.architecture()));
    }
    let diff_ids = diff_ids(layout, &manifest.config, &config)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err("the base's config and manifest disagree on the number of layers".into());
    }
    let (keys, _) = image.layer_keys(src, manifest).map_err(|e| e.to_string())?;
    let layers = manifest
        .layers
        .iter()
        .zip(diff_ids)
        .zip(keys)
        .map(|((l, diff_id), key)| Prebuilt {
            layout: if registry.is_some() { String::new() } else { rel.to_string() },
            registry: registry.map(str::to_string),
            digest: l.digest.clone(),
            size: l.size,
            media_type: oci_layer_type(&l.media_type),
            diff_id,
            created_by: key.unwrap_or_else(|| format!("base layer from {rel}")),
        })
        .collect();
    Ok(LayoutBase { layers, config })
}

/// A layer's media type as an OCI manifest names it: docker's gzip layer is the OCI one.
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        other => other.to_string(),
    }
}

/// The config's `rootfs.diff_ids`, parsed: an image built on the base records them in its own
/// config, so a malformed one is refused here, naming the config blob.
fn diff_ids(layout: &Path, blob: &walk::Blob, config: &ImageConfiguration) -> Result<Vec<Digest>, String> {
    let file = format!("config {}", blob.digest.layout_path().display());
    let parse = |d: &String| d.parse().map_err(|e| walk::invalid(layout, format!("{file} has the diff_id {e}")));
    config.rootfs().diff_ids().iter().map(parse).collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// Starts an image's config from its base's: recipe values override, env merges by name.
pub fn inherit(
    config: &mut ConfigPlan,
    base: &ImageConfiguration,
    recipe_env: &[(String, String)],
    has_entrypoint: bool,
) {
    let Some(b) = base.config() else { return };
    let mut env: Vec<String> = b.env().clone().unwrap_or_default();
    for (k, v) in recipe_env {
        env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    if env.iter().any(|e| e.starts_with("PATH=")) {
        config.env = env;
    } else {
        let mut with_path = vec![DEFAULT_PATH.to_string()];
        with_path.extend(env);
        config.env = with_path;
    }
    if config.entrypoint.is_none() && !has_entrypoint {
        config.entrypoint = b.entrypoint().clone();
        if config.cmd.is_none() {
            config.cmd = b.cmd().clone();
        }
    }
    if config.user.is_none() {
        config.user = b.user().clone();
    }
    if config.workdir.is_none() {
        config.workdir = b.working_dir().clone();
    }
    let mut ports: Vec<String> = b.exposed_ports().clone().unwrap_or_default();
    ports.extend(config.exposed_ports.iter().cloned());
    ports.sort();
    ports.dedup();
    config.exposed_ports = ports;
    let mut labels: BTreeMap<String, String> = b.labels().clone().unwrap_or_default().into_iter().collect();
    labels.extend(config.labels.clone());
    config.labels = labels;
}

/// The Debian packages (name, Debian architecture) the recipe's distroless images need, each
/// with the span of the `base` that asks for it. Empty filters mean every image and platform.
pub fn needs(
    recipe: &crate::recipe::Recipe,
    platforms: &[Platform],
    images: &[String],
) -> Vec<((String, String), miette::SourceSpan)> {
    let mut out: Vec<((String, String), miette::SourceSpan)> = Vec::new();
    for spec in &recipe.images {
        if !images.is_empty() && !images.contains(&spec.name.value) {
            continue;
        }
        let crate::recipe::Base::Distroless(flavour) = spec.base.value else { continue };
        let wanted_platforms = spec.platforms.as_ref().or(recipe.defaults.platforms.as_ref());
        let list: Vec<Platform> = match wanted_platforms {
            Some(l) => l.iter().map(|p| p.value).collect(),
            None => Platform::ALL.to_vec(),
        };
        for p in list.into_iter().filter(|p| platforms.is_empty() || platforms.contains(p)) {
            for w in wanted(flavour, p) {
                if !out.iter().any(|(o, _)| *o == w) {
                    out.push((w, spec.base.span));
                }
            }
        }
    }
    out
}

/// The registry bases (by reference) the selected images name, each with the platforms it is
/// needed for: what the fetch step pulls before planning.
pub fn registry_needs(
    recipe: &crate::recipe::Recipe,
    platforms: &[Platform],
    images: &[String],
) -> Vec<(String, Vec<Platform>)> {
    let mut out: Vec<(String, Vec<Platform>)> = Vec::new();
    for spec in &recipe.images {
        if !images.is_empty() && !images.contains(&spec.name.value) {
            continue;
        }
        let crate::recipe::Base::Registry(r) = &spec.base.value else { continue };
        let list: Vec<Platform> = match spec.platforms.as_ref().or(recipe.defaults.platforms.as_ref()) {
            Some(l) => l.iter().map(|p| p.value).collect(),
            None => Platform::ALL.to_vec(),
        };
        let list: Vec<Platform> = list.into_iter().filter(|p| platforms.is_empty() || platforms.contains(p)).collect();
        match out.iter_mut().find(|(o, _)| o == r) {
            Some((_, have)) => have.extend(list.into_iter().filter(|p| !have.contains(p)).collect::<Vec<_>>()),
            None => out.push((r.clone(), list)),
        }
    }
    out
}
