//! Attestations written by `kiln build --sbom --provenance`: for every image and platform, an
//! SPDX and a CycloneDX SBOM and an in-toto provenance statement, each an artifact whose
//! subject is the platform manifest, written into the release beside the images; the
//! layout's `index.json` lists them by their artifact type.

use super::collect::{Gathered, inventory};
use super::provenance::{self, IN_TOTO_TYPE};
use super::referrers::{EMPTY, artifact, descriptor};
use super::sbom::{CYCLONEDX_TYPE, SPDX_TYPE, cyclonedx, spdx};
use crate::error::BuildError;
use crate::image::BuiltImage;
use crate::store::walk::Blob;
use crate::store::{BlobRef, BlobSink};

/// Which attestations to write.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub sbom: bool,
    pub provenance: bool,
}

/// An attestation written: its artifact manifest (what `index.json` lists) and its document.
#[derive(Debug, Clone)]
pub struct Written {
    pub image: String,
    pub platform: String,
    pub artifact_type: String,
    pub manifest: BlobRef,
    /// The document's file name as `--sbom-out` writes it, and its bytes.
    pub file: String,
    pub document: Vec<u8>,
}

fn slug(platform: &str) -> String {
    platform.replace('/', "-")
}

/// Writes the attestations `wanted` of every built image and platform into `sink`.
pub fn write(
    g: &Gathered<'_>,
    wanted: Wanted,
    provenance_inputs: &provenance::Inputs<'_>,
    built: &[BuiltImage],
    sink: &dyn BlobSink,
) -> Result<Vec<Written>, BuildError> {
    let mut out = Vec::new();
    if !wanted.sbom && !wanted.provenance {
        return Ok(out);
    }
    sink.write_bytes(EMPTY)?;
    for (image, b) in g.plan.images.iter().zip(built) {
        for (p, (_, manifest)) in image.platforms.iter().zip(&b.manifests) {
            let subject = Blob {
                digest: manifest.digest.clone(),
                size: manifest.size,
                media_type: super::referrers::MANIFEST_TYPE.into(),
            };
            let mut docs: Vec<(&str, &str, Vec<u8>)> = Vec::new();
            if wanted.sbom {
                let inv = inventory(g, image, p);
                docs.push((SPDX_TYPE, "spdx.json", spdx(&inv)));
                docs.push((CYCLONEDX_TYPE, "cdx.json", cyclonedx(&inv)));
            }
            if wanted.provenance {
                let statement = provenance::statement(g.plan, (image, p), &manifest.digest, provenance_inputs);
                docs.push((IN_TOTO_TYPE, "provenance.json", statement));
            }
            for (kind, ext, document) in docs {
                sink.write_bytes(&document)?;
                let m = artifact(kind, vec![descriptor(kind, &document)], &subject);
                let manifest = sink.write_bytes(&m)?;
                out.push(Written {
                    image: image.name.clone(),
                    platform: p.platform.to_string(),
                    artifact_type: kind.to_string(),
                    manifest,
                    file: format!("{}.{}.{ext}", image.name, slug(&p.platform.to_string())),
                    document,
                });
            }
        }
    }
    Ok(out)
}
