//! Which file goes into which layer, and in what order.
//!
//! Updates to edge devices move whole layers, so the assignment is built to keep layers stable:
//! every recipe node gets a layer of its own, keyed by the node (not by its position), so that
//! changing one binary or adding one file changes one layer and nothing else. Layers are stacked
//! from least to most volatile: base, rarely changing data, platform-independent files,
//! per-platform files, compiled binaries, often changing data, and the small files the recipe
//! writes itself last. Identical content gets identical layers, so images of one recipe and the
//! platforms of one image share them byte for byte.

use super::Entry;
pub use crate::recipe::{NamedLayer, Volatility};

/// The files of one recipe node (or one base layer) for one platform.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Stable identity of the layer across releases, recorded in the image.
    pub key: String,
    pub name: String,
    pub created_by: String,
    pub reason: String,
    pub volatility: Volatility,
    pub entries: Vec<Entry>,
}

pub(crate) fn under(path: &str, prefix: &str) -> bool {
    let p = path.trim_end_matches('/');
    let pre = prefix.trim_end_matches('/');
    pre.is_empty() || p == pre || p.starts_with(&format!("{pre}/"))
}

/// Groups units into layers: files under a named layer's paths move to that layer, the recipe's
/// own small files share one config layer, every other unit stays a layer of its own. Layers
/// are ordered by volatility, then by the previous release's order for keys it had, then by
/// recipe order.
pub fn assign(units: Vec<Unit>, named: &[NamedLayer], previous: Option<&[String]>) -> Vec<Unit> {
    let mut groups: Vec<Unit> = Vec::new();
    let push = |groups: &mut Vec<Unit>, template: &Unit, entries: Vec<Entry>| {
        if entries.is_empty() {
            return;
        }
        match groups.iter_mut().find(|g| g.key == template.key) {
            Some(g) => g.entries.extend(entries),
            None => groups.push(Unit { entries, ..template.clone() }),
        }
    };
    for mut unit in units {
        let mut rest = Vec::new();
        let mut moved: Vec<(usize, Entry)> = Vec::new();
        // Entries are moved, never copied: a layer of many files is held once.
        for e in std::mem::take(&mut unit.entries) {
            match named.iter().position(|n| n.paths.iter().any(|p| under(&e.path, p))) {
                // Directories stay where they are too, so both layers keep their parents.
                Some(i) if unit.volatility != Volatility::Base => {
                    if e.kind != super::EntryKind::Dir {
                        moved.push((i, e));
                    }
                }
                _ => rest.push(e),
            }
        }
        let any_moved = !moved.is_empty();
        for (i, n) in named.iter().enumerate() {
            let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut moved).into_iter().partition(|(j, _)| *j == i);
            moved = others;
            let entries: Vec<Entry> = mine.into_iter().map(|(_, e)| e).collect();
            let template = Unit {
                key: format!("layer {}", n.name),
                name: format!("layer {}", n.name),
                created_by: format!("kiln: layer {} (pinned in the recipe)", n.name),
                reason: reason(&format!("layer {}", n.name)),
                volatility: n.volatility,
                entries: Vec::new(),
            };
            push(&mut groups, &template, entries);
        }
        let only_dirs = rest.iter().all(|e| e.kind == super::EntryKind::Dir);
        if !only_dirs || !any_moved {
            push(&mut groups, &unit, rest);
        }
    }
    let prev_pos = |key: &str| previous.and_then(|p| p.iter().position(|k| k == key)).unwrap_or(usize::MAX);
    // A stable sort keeps recipe order among equals.
    groups.sort_by_key(|g| (g.volatility, prev_pos(&g.key)));
    groups
}

/// The prefix of a shared layer's key; the rest names the images that share it.
pub const SHARED_PREFIX: &str = "shared ";

/// A shared layer's key, from the names of the images that share it (sorted).
pub fn shared_key(images: &[String]) -> String {
    format!("{SHARED_PREFIX}{}", images.join(","))
}

/// The images a shared layer's key names.
pub fn shared_images(key: &str) -> Option<Vec<&str>> {
    key.strip_prefix(SHARED_PREFIX).map(|rest| rest.split(',').collect())
}

/// Why a layer with this key holds what it holds and stands where it does: the one wording
/// `kiln plan` and `kiln inspect` share.
pub fn reason(key: &str) -> String {
    if key.starts_with("base sha256:") {
        "a layer of the base image, reused as it is: below everything the recipe adds".into()
    } else if key.starts_with("base ") {
        "part of the distroless base (pinned Debian packages): below everything the recipe adds".into()
    } else if let Some(images) = shared_images(key) {
        let images = images.join(", ");
        format!(
            "files that the images {images} all hold (same path, content, mode and owner) and no other image of the recipe does: one layer they share, below their own files"
        )
    } else if key == "config" {
        "small files the recipe writes itself: one layer, stacked last because it changes most often".into()
    } else if let Some(name) = key.strip_prefix("layer ") {
        format!("pinned to layer `{name}` by the recipe's layers block")
    } else if key.starts_with("rust ") || key.starts_with("c ") || key.starts_with("go ") {
        "a compiled binary: a layer of its own, above the data, so a code change moves only this layer".into()
    } else if key.starts_with("copy ") && crate::oci::platform::has_placeholder(key) {
        "per-platform files: a layer of their own, so one platform's change moves one layer".into()
    } else if key.starts_with("copy ") {
        "platform-independent files: one layer shared by every platform and every image that copies the same".into()
    } else {
        "not recorded".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::EntryKind;

    fn file(path: &str) -> Entry {
        Entry { size: Some(1), sha256: Some("00".into()), ..Entry::new(path, EntryKind::File, 0o644, 0, 0) }
    }

    fn unit(key: &str, v: Volatility, paths: &[&str]) -> Unit {
        Unit {
            key: key.into(),
            name: key.into(),
            created_by: key.into(),
            reason: String::new(),
            volatility: v,
            entries: paths.iter().map(|p| file(p)).collect(),
        }
    }

    #[test]
    fn orders_by_volatility_then_previous_then_recipe() {
        let units = vec![
            unit("config", Volatility::Config, &["/etc/a"]),
            unit("bin b", Volatility::Binary, &["/b"]),
            unit("bin a", Volatility::Binary, &["/a"]),
            unit("data", Volatility::Data, &["/srv/x"]),
        ];
        let keys = |g: &[Unit]| g.iter().map(|u| u.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&assign(units.clone(), &[], None)), ["data", "bin b", "bin a", "config"]);
        let previous = vec!["bin a".to_string(), "bin b".to_string()];
        assert_eq!(keys(&assign(units, &[], Some(&previous))), ["data", "bin a", "bin b", "config"]);
    }

    #[test]
    fn named_layers_collect_their_paths_from_every_node() {
        let units = vec![
            unit("copy 1", Volatility::Data, &["/srv/a", "/opt/x"]),
            unit("copy 2", Volatility::Data, &["/srv/b"]),
        ];
        let named = [NamedLayer { name: "web".into(), paths: vec!["/srv/".into()], volatility: Volatility::Rare }];
        let g = assign(units, &named, None);
        assert_eq!(g[0].key, "layer web");
        assert_eq!(g[0].entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["/srv/a", "/srv/b"]);
        assert_eq!(g[1].key, "copy 1");
        assert_eq!(g.len(), 2, "copy 2 is left empty and dropped");
    }
}
