//! The annotation keys kiln writes on image indexes and descriptors, and the encoding of the
//! layer keys it records there. Shared vocabulary: the image writer sets them and the layout
//! reader (`walk`) reads them, neither depending on the other.

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// How the layers were compressed; on the image index.
pub const ANNOTATION_COMPRESSION: &str = "dev.kiln.compression";
/// The layer plan: the keys of the layers kiln made, bottom first, one per line. On the image
/// index once for every platform, and on a platform's descriptor only where its keys differ.
pub const ANNOTATION_LAYERS: &str = "dev.kiln.layers";

/// The layer keys kiln records, as the value of [`ANNOTATION_LAYERS`]: one per line.
pub fn encode_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> String {
    keys.into_iter().collect::<Vec<_>>().join("\n")
}
