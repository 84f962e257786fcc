//! From placed nodes to layers: the layering unit of each node, the check that no two nodes
//! write one path, and the layer plan (sorted entries, parent directories, id) of each unit.

use super::{Placed, Resolver};
use crate::baseview::BaseView;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::has_placeholder;
use crate::plan::layering::{Unit, Volatility, reason};
use crate::plan::{Entry, EntryKind, LayerPlan};
use crate::recipe::{Compression, Content, ImageSpec, Perms};
use std::collections::{BTreeMap, BTreeSet};

impl Resolver<'_> {
    /// Two nodes may share directories but never a file path.
    pub(super) fn check_conflicts(&mut self, spec: &ImageSpec, placed: &[(usize, Placed)]) {
        let mut owner: BTreeMap<String, (usize, EntryKind)> = BTreeMap::new();
        for (i, p) in placed {
            for e in &p.entries {
                let key = e.path.trim_end_matches('/').to_string();
                match owner.get(&key) {
                    Some((j, kind)) if *j != *i && !(*kind == EntryKind::Dir && e.kind == EntryKind::Dir) => {
                        let first = spec.contents[*j].dest_span();
                        let here = spec.contents[*i].dest_span();
                        let msg = format!("`{key}` is written by two nodes");
                        self.once(
                            format!("dup:{key}"),
                            here,
                            Problem::new(Code::PlanDuplicateDestination, here, msg)
                                .label("second write here")
                                .also(first, "first written here")
                                .help("each path in an image must come from one node; remove or rename one of them"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(key, (*i, e.kind));
                    }
                }
            }
        }
        // A file may not stand where another node needs a directory.
        for key in owner.keys() {
            let mut parent = key.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                if up.is_empty() {
                    break;
                }
                if let Some((j, EntryKind::File | EntryKind::Symlink)) = owner.get(up) {
                    let (i, _) = owner[key];
                    if i != *j {
                        let here = spec.contents[i].dest_span();
                        let first = spec.contents[*j].dest_span();
                        self.once(
                            format!("parent:{up}"),
                            here,
                            Problem::new(
                                Code::PlanDuplicateDestination,
                                here,
                                format!("`{up}` is a file, but this node puts files below it"),
                            )
                            .label("needs a directory")
                            .also(first, "file written here"),
                        );
                    }
                }
                parent = up;
            }
        }
    }
}

/// A placed node as a layering unit: its stable key, why it gets a layer, how volatile it is.
pub(super) fn unit(content: &Content, placed: Placed) -> Option<Unit> {
    if placed.entries.is_empty() {
        return None;
    }
    if let Some(key) = placed.share {
        return Some(super::share::shared_unit(key, placed.entries));
    }
    let (key, name, created_by, volatility) = match content {
        Content::File { .. } => (
            "config".to_string(),
            "config".to_string(),
            "kiln: files written by the recipe".to_string(),
            Volatility::Config,
        ),
        Content::Copy { src, dest, .. } if !has_placeholder(&src.value) => (
            format!("copy {} {}", src.value, dest.value),
            format!("copy {}", src.value),
            format!("kiln: copy {} {}", src.value, dest.value),
            Volatility::Data,
        ),
        Content::Copy { src, dest, .. } => {
            let (name, created_by) = placed.layer.clone().unwrap_or_default();
            (format!("copy {} {}", src.value, dest.value), name, created_by, Volatility::Platform)
        }
        Content::Rust(spec) => {
            let (name, created_by) = placed.layer.clone().unwrap_or_default();
            let bin = name.rsplit('/').next().unwrap_or_default().to_string();
            (format!("rust {}/{bin}", spec.package.value), name, created_by, Volatility::Binary)
        }
        Content::C(spec) => {
            let (name, created_by) = placed.layer.clone().unwrap_or_default();
            (format!("c {}", spec.name.value), name, created_by, Volatility::Binary)
        }
        Content::Go(spec) => {
            let (name, created_by) = placed.layer.clone().unwrap_or_default();
            (format!("go {}", spec.package.value), name, created_by, Volatility::Binary)
        }
    };
    let reason = reason(&key);
    Some(Unit { key, name, created_by, reason, volatility, entries: placed.entries })
}

/// Sorts entries, adds missing parent directories and computes the layer id.
pub(super) fn layer(unit: Unit, compression: Compression, epoch: u64) -> LayerPlan {
    layer_over(unit, compression, epoch, &BaseView::default())
}

/// Like [`layer`], for a layer above a base: a parent directory the base already has (a
/// directory or a symlink) is not written again, so the base keeps its modes, owners and links
/// (`/tmp` stays 1777, a home stays its owner's, `bin -> usr/bin` stays a link).
pub(super) fn layer_over(unit: Unit, compression: Compression, epoch: u64, below: &BaseView) -> LayerPlan {
    let Unit { key, name, created_by, reason, volatility, mut entries } = unit;
    let present: BTreeSet<String> = entries.iter().map(|e| e.path.trim_end_matches('/').to_string()).collect();
    let mut parents = BTreeSet::new();
    for e in &entries {
        let mut p = e.path.trim_end_matches('/');
        while let Some((up, _)) = p.rsplit_once('/') {
            if up.is_empty() {
                break;
            }
            if !present.contains(up) && !below.has(up) {
                parents.insert(up.to_string());
            }
            p = up;
        }
    }
    entries.extend(parents.into_iter().map(|p| Resolver::dir_entry(format!("{p}/"), Perms::default())));
    entries.sort_by(|a, b| a.path.trim_end_matches('/').cmp(b.path.trim_end_matches('/')));
    entries.dedup_by(|a, b| a.path == b.path);
    // The id covers exactly what reaches the blob (compression, mtimes, entries), not where a
    // file was read from.
    let id = layer_id(compression, epoch, &entries);
    LayerPlan { id, key, name, reason, volatility, created_by, entries, prebuilt: None }
}

/// The sha256 of the canonical JSON of `[compression, epoch, entries]`, each entry without
/// where its file is read from; hashed an entry at a time, so a layer of many files needs no
/// second copy of them.
pub(crate) fn layer_id(compression: Compression, epoch: u64, entries: &[Entry]) -> String {
    use crate::oci::canonical::to_vec;
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"[");
    h.update(to_vec(&compression));
    h.update(format!(",{epoch},["));
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        h.update(to_vec(&Entry { source: None, from: None, ..e.clone() }));
    }
    h.update(b"]]");
    crate::oci::digest::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_id_hashes_the_canonical_json_of_its_compression_epoch_and_entries() {
        let mut entries = vec![Resolver::dir_entry("srv/".into(), Perms::default())];
        let mut file = Resolver::dir_entry("srv/a".into(), Perms::default());
        file.kind = EntryKind::File;
        file.sha256 = Some("ab".repeat(32));
        file.source = Some("a".into());
        entries.push(file);
        for c in [Compression::DEFAULT, Compression::Zstd { level: 3, encoder: crate::recipe::Encoder::Stream }] {
            let identity: Vec<Entry> =
                entries.iter().cloned().map(|e| Entry { source: None, from: None, ..e }).collect();
            let whole =
                crate::oci::digest::sha256_hex(&crate::oci::canonical::to_vec(&(&c, 1_700_000_000u64, &identity)));
            assert_eq!(layer_id(c, 1_700_000_000, &entries), whole);
        }
    }
}
