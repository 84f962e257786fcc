//! OCI image config, manifest and image index for one recipe image, from the plan and the
//! layers already written. Types come from `oci-spec`; bytes come from [`crate::oci::canonical`].

use crate::error::BuildError;
use crate::layer::LayerBlob;
use crate::oci::canonical;
use crate::oci::platform::Platform;
use crate::plan::{ImagePlan, PlatformPlan};
use crate::store::{BlobRef, BlobSink};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

pub use crate::oci::annotation::{
    ANNOTATION_COMPRESSION, ANNOTATION_CREATED, ANNOTATION_LAYERS, ANNOTATION_REF_NAME, encode_keys,
};

/// What was written for one image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub name: String,
    pub index: BlobRef,
    pub manifests: Vec<(Platform, BlobRef)>,
}

fn spec_err(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> BuildError {
    move |e| crate::error::StoreError::InvalidLayout { path: what.into(), reason: e.to_string() }.into()
}

fn digest(d: &crate::oci::digest::Digest) -> Result<Digest, BuildError> {
    Digest::from_str(&d.to_string()).map_err(spec_err("digest"))
}

fn descriptor(media_type: MediaType, blob: &BlobRef) -> Result<Descriptor, BuildError> {
    Ok(Descriptor::new(media_type, blob.size, digest(&blob.digest)?))
}

fn oci_platform(p: Platform) -> Result<oci_spec::image::Platform, BuildError> {
    let mut b = PlatformBuilder::default().architecture(Arch::from(p.arch())).os(Os::from(p.os()));
    if let Some(v) = p.variant() {
        b = b.variant(v);
    }
    b.build().map_err(spec_err("platform"))
}

fn hashmap(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Config + manifest for one platform; returns the manifest blob.
fn write_platform(
    image: &ImagePlan,
    p: &PlatformPlan,
    created: &str,
    layers: &BTreeMap<String, LayerBlob>,
    sink: &dyn BlobSink,
) -> Result<BlobRef, BuildError> {
    let blobs: Vec<&LayerBlob> = p
        .layers
        .iter()
        .map(|l| {
            layers.get(&l.id).ok_or_else(|| crate::error::StoreError::InvalidLayout {
                path: "staging".into(),
                reason: format!("layer {} was not built", l.id),
            })
        })
        .collect::<Result<_, _>>()?;
    let c = &p.config;
    let mut cb = ConfigBuilder::default().env(c.env.clone());
    if let Some(e) = &c.entrypoint {
        cb = cb.entrypoint(e.clone());
    }
    if let Some(e) = &c.cmd {
        cb = cb.cmd(e.clone());
    }
    if let Some(u) = &c.user {
        cb = cb.user(u.clone());
    }
    if let Some(w) = &c.workdir {
        cb = cb.working_dir(w.clone());
    }
    if !c.exposed_ports.is_empty() {
        cb = cb.exposed_ports(c.exposed_ports.clone());
    }
    if !c.labels.is_empty() {
        cb = cb.labels(hashmap(&c.labels));
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(blobs.iter().map(|b| b.diff_id.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err("rootfs"))?;
    let mut config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(p.platform.arch()))
        .os(Os::from(p.platform.os()))
        .config(cb.build().map_err(spec_err("config"))?)
        .rootfs(rootfs);
    if let Some(v) = p.platform.variant() {
        config = config.variant(v);
    }
    let config = config.build().map_err(spec_err("config"))?;
    let config_blob = sink.write_bytes(&canonical::to_vec(&config))?;
    let layer_descs = blobs
        .iter()
        .map(|b| descriptor(MediaType::from(b.media_type.as_str()), &b.blob))
        .collect::<Result<Vec<_>, _>>()?;
    // Every byte of a manifest is downloaded again on each update; the creation time (in the
    // config too) and the compression are on the image index.
    let mut annotations = hashmap(&image.annotations);
    annotations.remove(ANNOTATION_CREATED);
    annotations.remove(ANNOTATION_COMPRESSION);
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config_blob)?)
        .layers(layer_descs);
    if !annotations.is_empty() {
        manifest = manifest.annotations(annotations);
    }
    let manifest = manifest.build().map_err(spec_err("manifest"))?;
    sink.write_bytes(&canonical::to_vec(&manifest))
}

/// Writes every platform's config and manifest and the image's index.
pub fn write_image(
    image: &ImagePlan,
    created: &str,
    layers: &BTreeMap<String, LayerBlob>,
    sink: &dyn BlobSink,
) -> Result<BuiltImage, BuildError> {
    // The layer plan (what `kiln inspect` and `--previous` read back) is recorded once on the
    // image index rather than in every platform's config: those are downloaded again on every
    // update. A platform whose keys differ from the most common ones carries its own.
    let keys: Vec<String> = image
        .platforms
        .iter()
        .map(|p| encode_keys(p.layers.iter().filter(|l| l.prebuilt.is_none()).map(|l| l.key.as_str())))
        .collect();
    let count = |k: &String| keys.iter().filter(|o| *o == k).count();
    let common = keys
        .iter()
        .fold(None::<&String>, |best, k| if best.is_some_and(|b| count(b) >= count(k)) { best } else { Some(k) });
    let common = common.cloned();
    let mut manifests = Vec::new();
    let mut descs = Vec::new();
    for (p, own) in image.platforms.iter().zip(&keys) {
        let blob = write_platform(image, p, created, layers, sink)?;
        let mut desc = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .size(blob.size)
            .digest(digest(&blob.digest)?)
            .platform(oci_platform(p.platform)?);
        if Some(own) != common.as_ref() {
            desc = desc.annotations(HashMap::from([(ANNOTATION_LAYERS.to_string(), own.clone())]));
        }
        descs.push(desc.build().map_err(spec_err("descriptor"))?);
        manifests.push((p.platform, blob));
    }
    let mut annotations = hashmap(&image.annotations);
    if let Some(common) = common {
        annotations.insert(ANNOTATION_LAYERS.to_string(), common);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descs)
        .annotations(annotations)
        .build()
        .map_err(spec_err("index"))?;
    let index = sink.write_bytes(&canonical::to_vec(&index))?;
    Ok(BuiltImage { name: image.name.clone(), index, manifests })
}

/// The layout's `index.json`: one image index per recipe image, named by `ref.name`, and
/// once more per tag as `IMAGE:TAG` (with containerd's `io.containerd.image.name`, the full
/// reference `docker.io/library/IMAGE:TAG` that `ctr images import` names the image by).
/// `artifacts` (SBOMs, provenance) follow, each with its artifact type.
pub fn layout_index(
    images: &[BuiltImage],
    tags: &[String],
    artifacts: &[(String, BlobRef)],
) -> Result<Vec<u8>, BuildError> {
    let names = images.iter().flat_map(|i| {
        std::iter::once((i, i.name.clone(), false))
            .chain(tags.iter().map(move |t| (i, format!("{}:{t}", i.name), true)))
    });
    let descs = names
        .map(|(i, name, tagged)| {
            let mut ann = HashMap::new();
            if tagged && let Ok(full) = crate::oci::reference::Reference::parse(&name) {
                // containerd takes the name as it is: the full reference, as kubelet names it.
                ann.insert("io.containerd.image.name".to_string(), full.to_string());
            }
            ann.insert(ANNOTATION_REF_NAME.to_string(), name);
            DescriptorBuilder::default()
                .media_type(MediaType::ImageIndex)
                .size(i.index.size)
                .digest(digest(&i.index.digest)?)
                .annotations(ann)
                .build()
                .map_err(spec_err("descriptor"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut descs = descs;
    for (kind, blob) in artifacts {
        let d = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .artifact_type(MediaType::from(kind.as_str()))
            .size(blob.size)
            .digest(digest(&blob.digest)?)
            .build()
            .map_err(spec_err("descriptor"))?;
        descs.push(d);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descs)
        .build()
        .map_err(spec_err("index"))?;
    Ok(canonical::to_vec(&index))
}
