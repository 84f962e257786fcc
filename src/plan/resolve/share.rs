//! File-level sharing across the images of a recipe.
//!
//! Every file that a platform-independent `copy` puts into an image is looked up in every other
//! image of the recipe (same path, kind, content, mode, owner and link target). The files held
//! by the same set of images form one group, and each group becomes one layer, keyed by the
//! set (`shared a,b`), that all of those images reference below their own files. A change to a
//! file moves it between groups of images that hold it, so no other image's layers change.
//!
//! Groups are found over all the recipe's images, whichever are being built, so that an image
//! built alone (`--image`) gets the same layers as in a build of the whole fleet. A group
//! whose files come to fewer than `share-min` bytes is not worth a layer: its files stay in
//! each image's own layers. No image takes more than half its layer budget in shared layers:
//! past that, the smallest of its groups are left unshared, the same way.

use super::{Placed, Resolver};
use crate::oci::platform::{Platform, has_placeholder};
use crate::plan::layering::{Unit, Volatility, reason, shared_images, shared_key};
use crate::plan::{Entry, EntryKind};
use crate::recipe::{Content, Recipe};
use std::collections::{BTreeMap, BTreeSet};

/// The fewest bytes of files a group must hold to get a layer, unless the recipe says.
pub const DEFAULT_SHARE_MIN: u64 = 16 << 10;

/// Which group each shared file is in: its identity → the group's key.
#[derive(Debug, Default)]
pub(super) struct Sharing {
    groups: BTreeMap<Vec<u8>, String>,
}

/// A group of files that the same images hold.
struct Group {
    images: Vec<String>,
    bytes: u64,
    files: Vec<Vec<u8>>,
}

/// What makes two entries the same file in two images: all that reaches the tar.
fn identity(e: &Entry) -> Vec<u8> {
    crate::oci::canonical::to_vec(&Entry { source: None, from: None, ..e.clone() })
}

/// Nodes whose files take part: platform-independent copies.
fn shareable(c: &Content) -> bool {
    matches!(c, Content::Copy { src, .. } if !has_placeholder(&src.value))
}

impl Resolver<'_> {
    /// Finds the groups of files that images of the recipe hold alike. Problems met on the
    /// way are left for the images' own planning to report (or not, for an image not built).
    pub(super) fn sharing(&mut self, recipe: &Recipe, share_min: u64) -> Sharing {
        if recipe.images.len() < 2 {
            return Sharing::default();
        }
        let (problems, reported, ignore_error) =
            (self.problems.len(), self.reported.clone(), self.kilnignore_error.clone());
        let mut held: BTreeMap<Vec<u8>, (BTreeSet<String>, u64)> = BTreeMap::new();
        for spec in &recipe.images {
            for c in spec.contents.iter().filter(|c| shareable(c)) {
                let Some(placed) = self.place(c, Platform::LinuxAmd64) else { continue };
                for e in placed.entries.iter().filter(|e| e.kind != EntryKind::Dir && !self.in_named(&e.path)) {
                    let h = held.entry(identity(e)).or_insert_with(|| (BTreeSet::new(), e.size.unwrap_or(0)));
                    h.0.insert(spec.name.value.clone());
                }
            }
        }
        self.problems.truncate(problems);
        self.reported = reported;
        self.kilnignore_error = ignore_error;
        let mut groups: BTreeMap<Vec<String>, Group> = BTreeMap::new();
        for (id, (images, size)) in held.into_iter().filter(|(_, (images, _))| images.len() > 1) {
            let images: Vec<String> = images.into_iter().collect();
            let g = groups.entry(images.clone()).or_insert(Group { images, bytes: 0, files: Vec::new() });
            g.bytes += size;
            g.files.push(id);
        }
        groups.retain(|_, g| g.bytes >= share_min);
        self.cap_shared(&mut groups, recipe);
        let mut out = Sharing::default();
        for g in groups.into_values() {
            let key = shared_key(&g.images);
            out.groups.extend(g.files.into_iter().map(|f| (f, key.clone())));
        }
        out
    }

    /// Leaves no image with more shared layers than half its budget: the smallest groups of an
    /// image over it are dropped (bytes, then key), one at a time, until none is over.
    fn cap_shared(&self, groups: &mut BTreeMap<Vec<String>, Group>, recipe: &Recipe) {
        let cap = (self.budget / 2).max(1);
        for spec in &recipe.images {
            let name = &spec.name.value;
            loop {
                let mine: Vec<(&Vec<String>, u64)> =
                    groups.iter().filter(|(k, _)| k.contains(name)).map(|(k, g)| (k, g.bytes)).collect();
                if mine.len() <= cap {
                    break;
                }
                let smallest = mine.iter().min_by_key(|(k, bytes)| (*bytes, (*k).clone())).map(|(k, _)| (*k).clone());
                if let Some(k) = smallest {
                    groups.remove(&k);
                }
            }
        }
    }

    fn in_named(&self, path: &str) -> bool {
        self.named.iter().any(|n| n.paths.iter().any(|p| crate::plan::layering::under(path, p)))
    }
}

/// Orders units so that shared layers stand below an image's own: most widely shared first,
/// then by key; the others keep their order.
pub(super) fn below_own(u: &Unit) -> (u8, std::cmp::Reverse<usize>, String) {
    match shared_images(&u.key) {
        Some(images) => (0, std::cmp::Reverse(images.len()), u.key.clone()),
        None => (1, std::cmp::Reverse(0), String::new()),
    }
}

/// The layering unit of a node's files that other images hold too.
pub(super) fn shared_unit(key: String, entries: Vec<Entry>) -> Unit {
    let names = shared_images(&key).unwrap_or_default().join(", ");
    Unit {
        name: format!("shared by {names}"),
        created_by: format!("kiln: files the images {names} hold alike"),
        reason: reason(&key),
        volatility: Volatility::Data,
        entries,
        key,
    }
}

impl Sharing {
    /// Splits each shareable node's files into its own part and one part per group, each part
    /// with the directories above its files (a directory with no file below it stays with the
    /// node's own part).
    pub(super) fn split(&self, placed: Vec<(usize, Placed)>, contents: &[Content]) -> Vec<(usize, Placed)> {
        if self.groups.is_empty() {
            return placed;
        }
        let mut out = Vec::new();
        for (i, p) in placed {
            if !shareable(&contents[i]) || p.share.is_some() {
                out.push((i, p));
                continue;
            }
            let (dirs, files): (Vec<Entry>, Vec<Entry>) = p.entries.into_iter().partition(|e| e.kind == EntryKind::Dir);
            let mut parts: BTreeMap<Option<String>, Vec<Entry>> = BTreeMap::new();
            for f in files {
                parts.entry(self.groups.get(&identity(&f)).cloned()).or_default().push(f);
            }
            let mut above_any = BTreeSet::new();
            let mut placed_parts: Vec<(Option<String>, Vec<Entry>, BTreeSet<String>)> = Vec::new();
            for (share, files) in parts {
                let above: BTreeSet<String> = files.iter().flat_map(|f| ancestors(&f.path)).collect();
                above_any.extend(above.iter().cloned());
                placed_parts.push((share, files, above));
            }
            for (share, mut files, above) in placed_parts {
                let own = share.is_none();
                let keep = |d: &&Entry| {
                    let path = d.path.trim_end_matches('/');
                    above.contains(path) || (own && !above_any.contains(path))
                };
                files.extend(dirs.iter().filter(keep).cloned());
                out.push((i, Placed { entries: files, layer: p.layer.clone(), share }));
            }
            if !out.iter().any(|(j, p)| *j == i && p.share.is_none()) {
                let empty: Vec<Entry> =
                    dirs.into_iter().filter(|d| !above_any.contains(d.path.trim_end_matches('/'))).collect();
                if !empty.is_empty() {
                    out.push((i, Placed { entries: empty, layer: p.layer.clone(), share: None }));
                }
            }
        }
        out
    }
}

/// The directories above an image path, without trailing slashes: `/a/b/c` → `/a`, `/a/b`.
fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = path.trim_end_matches('/');
    while let Some((up, _)) = p.rsplit_once('/') {
        if up.is_empty() {
            break;
        }
        out.push(up.to_string());
        p = up;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_images() {
        let key = shared_key(&["a".into(), "b-2".into()]);
        assert_eq!(key, "shared a,b-2");
        assert_eq!(shared_images(&key), Some(vec!["a", "b-2"]));
        assert_eq!(shared_images("copy a b"), None);
        assert_eq!(ancestors("/srv/a/b.txt"), ["/srv/a", "/srv"]);
    }
}
