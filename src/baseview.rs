//! What a base image's file system holds once its layers are stacked: each path's kind, mode,
//! owner and link target, and its `/etc/passwd` and `/etc/group`.
//!
//! Planning needs it to lay the recipe's files over the base without damaging it: a parent
//! directory the base already has is not written again (so `/tmp` keeps `1777` and a home its
//! owner), a destination below a base symlink goes where the link points (so a file at
//! `/bin/tool` on a usr-merged base lands in `/usr/bin/` and `bin -> usr/bin` stays a link), and
//! a user name the recipe asks for can be checked against the base's users.

use crate::oci::entry::{Entry, EntryKind, Prebuilt};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

/// The most of `/etc/passwd` or `/etc/group` kiln reads from a base.
const ACCOUNTS_MAX: u64 = 1 << 20;
/// Symlinks followed while resolving one path, as the kernel's limit.
const MAX_HOPS: usize = 40;

/// One path of the base.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub target: Option<String>,
}

/// The merged file system of a base (empty for `scratch`).
#[derive(Debug, Clone, Default)]
pub struct BaseView {
    /// By absolute path without a trailing `/` (`/usr/bin`).
    pub paths: BTreeMap<String, Node>,
    pub passwd: Option<String>,
    pub group: Option<String>,
}

fn key(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.is_empty() { "/".into() } else { p.to_string() }
}

impl BaseView {
    /// A base kiln assembles from entries (distroless), layers bottom first. Files' contents are
    /// read for the accounts files only, from `content` (kiln writes those itself).
    pub fn from_entries<'a>(layers: impl IntoIterator<Item = &'a [Entry]>) -> BaseView {
        let mut view = BaseView::default();
        for entries in layers {
            for e in entries {
                let k = key(&e.path);
                match k.as_str() {
                    "/etc/passwd" => view.passwd = e.content.clone(),
                    "/etc/group" => view.group = e.content.clone(),
                    _ => {}
                }
                let node = Node { kind: e.kind, mode: e.mode, uid: e.uid, gid: e.gid, target: e.target.clone() };
                view.paths.insert(k, node);
            }
        }
        view
    }

    /// A base taken from an OCI layout: every layer's tar is read (its digest checked), whiteouts
    /// applied, bottom layer first.
    pub fn from_layers(layout: &Path, layers: &[Prebuilt]) -> Result<BaseView, String> {
        let mut view = BaseView::default();
        for p in layers {
            view.stack(layout, p).map_err(|e| format!("base layer {}: {e}", p.digest))?;
        }
        Ok(view)
    }

    fn stack(&mut self, layout: &Path, p: &Prebuilt) -> Result<(), String> {
        let path = crate::store::blob_path(layout, &p.digest);
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut hashed = crate::oci::digest::HashingReader::new(io::BufReader::new(file));
        let mut layer: BTreeMap<String, Node> = BTreeMap::new();
        {
            let reader: Box<dyn Read + '_> = match p.media_type.as_str() {
                m if m.ends_with("gzip") => Box::new(flate2::read::GzDecoder::new(&mut hashed)),
                m if m.ends_with("zstd") => {
                    Box::new(zstd::stream::read::Decoder::new(&mut hashed).map_err(|e| e.to_string())?)
                }
                m if m.ends_with(".tar") || m.ends_with("tar") => Box::new(&mut hashed),
                other => return Err(format!("unsupported layer media type {other}")),
            };
            let mut tar = tar::Archive::new(reader);
            for item in tar.entries().map_err(|e| e.to_string())? {
                let mut item = item.map_err(|e| e.to_string())?;
                self.entry(&mut item, &mut layer)?;
            }
            let mut rest = tar.into_inner();
            io::copy(&mut rest, &mut io::sink()).map_err(|e| e.to_string())?;
        }
        io::copy(&mut hashed, &mut io::sink()).map_err(|e| e.to_string())?;
        let (_, actual, len) = hashed.finish();
        if actual != p.digest || len != p.size {
            return Err(format!("the blob has digest {actual} and {len} bytes, not what the manifest says"));
        }
        self.paths.extend(layer);
        Ok(())
    }

    /// One tar entry of a layer: whiteouts remove paths of the layers below; anything else is
    /// recorded in `layer`, which lands on top once the whole layer is read.
    fn entry<R: Read>(
        &mut self,
        item: &mut tar::Entry<'_, R>,
        layer: &mut BTreeMap<String, Node>,
    ) -> Result<(), String> {
        let raw = item.path().map_err(|e| e.to_string())?.to_string_lossy().into_owned();
        let rel = raw.trim_start_matches("./").trim_matches('/');
        if rel.is_empty() || rel == "." {
            return Ok(());
        }
        let path = format!("/{rel}");
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            let below = format!("{dir}/");
            self.paths.retain(|p, _| !p.starts_with(&below));
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            let gone = format!("{dir}/{hidden}");
            let below = format!("{gone}/");
            self.paths.retain(|p, _| *p != gone && !p.starts_with(&below));
            return Ok(());
        }
        let h = item.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            _ => EntryKind::File,
        };
        let target = match kind {
            EntryKind::Symlink => h.link_name().ok().flatten().map(|t| t.to_string_lossy().into_owned()),
            _ => None,
        };
        let node = Node {
            kind,
            mode: h.mode().unwrap_or(0o755) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            target,
        };
        let size = h.size().unwrap_or(0);
        let regular = h.entry_type().is_file();
        if regular && size <= ACCOUNTS_MAX && (path == "/etc/passwd" || path == "/etc/group") {
            let mut text = String::new();
            item.read_to_string(&mut text).map_err(|e| format!("{path}: {e}"))?;
            if path == "/etc/passwd" {
                self.passwd = Some(text);
            } else {
                self.group = Some(text);
            }
        }
        layer.insert(path, node);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Whether the base has `path` (a directory, or a symlink standing where one is).
    pub fn has(&self, path: &str) -> bool {
        self.paths.contains_key(&key(path))
    }

    /// `path` with every base symlink among its parents followed (and its last component too
    /// when `follow_last`), as the kernel would resolve it inside the image.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<String, String> {
        let mut queue: std::collections::VecDeque<String> =
            path.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect();
        let mut out: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    out.pop();
                    continue;
                }
                _ => out.push(c),
            }
            if queue.is_empty() && !follow_last {
                break;
            }
            let here = format!("/{}", out.join("/"));
            let Some(Node { kind: EntryKind::Symlink, target: Some(target), .. }) = self.paths.get(&here) else {
                continue;
            };
            hops += 1;
            if hops > MAX_HOPS {
                return Err(format!("`{path}` passes through more than {MAX_HOPS} symbolic links of the base"));
            }
            out.pop();
            if target.starts_with('/') {
                out.clear();
            }
            for comp in target.split('/').rev().filter(|c| !c.is_empty()) {
                queue.push_front(comp.to_string());
            }
        }
        Ok(format!("/{}", out.join("/")))
    }

    /// Whether the base's `/etc/passwd` (`group`: `/etc/group`) names `name`.
    pub fn knows(text: Option<&str>, name: &str) -> bool {
        text.is_some_and(|t| t.lines().any(|l| l.split(':').next() == Some(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(links: &[(&str, &str)], dirs: &[&str]) -> BaseView {
        let mut v = BaseView::default();
        for d in dirs {
            v.paths.insert(d.to_string(), Node { kind: EntryKind::Dir, mode: 0o755, uid: 0, gid: 0, target: None });
        }
        for (l, t) in links {
            let n = Node { kind: EntryKind::Symlink, mode: 0o777, uid: 0, gid: 0, target: Some(t.to_string()) };
            v.paths.insert(l.to_string(), n);
        }
        v
    }

    #[test]
    fn parents_follow_base_links() {
        let v =
            view(&[("/bin", "usr/bin"), ("/lib64", "/usr/lib64"), ("/usr/lib/x", "../../opt")], &["/usr", "/usr/bin"]);
        assert_eq!(v.resolve("/bin/tool", false).unwrap(), "/usr/bin/tool");
        assert_eq!(v.resolve("/lib64/ld.so", false).unwrap(), "/usr/lib64/ld.so");
        assert_eq!(v.resolve("/usr/lib/x/y", false).unwrap(), "/opt/y");
        assert_eq!(v.resolve("/bin", false).unwrap(), "/bin");
        assert_eq!(v.resolve("/bin", true).unwrap(), "/usr/bin");
    }

    #[test]
    fn link_loops_are_errors() {
        let v = view(&[("/a", "b"), ("/b", "a")], &[]);
        assert!(v.resolve("/a/x", false).is_err());
    }

    #[test]
    fn accounts_are_looked_up_by_name() {
        assert!(BaseView::knows(Some("root:x:0:0::/:/bin/sh\nnobody:x:65534:"), "nobody"));
        assert!(!BaseView::knows(Some("root:x:0:0::/:/bin/sh\n"), "nobod"));
        assert!(!BaseView::knows(None, "root"));
    }
}
