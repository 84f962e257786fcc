//! `copy` nodes: what a source names, checked to stay inside the recipe's directory, and the
//! files of a copied tree, less what is excluded (kiln's own output and caches, `.git`,
//! `.kilnignore` and the node's `exclude` patterns).

use super::{Placed, Resolver, join_image};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::ignore::{Patterns, is_kiln_own};
use crate::oci::platform::{Platform, has_placeholder};
use crate::plan::{Entry, EntryKind};
use crate::recipe::{Perms, Spanned};
use miette::SourceSpan;
use std::path::{Path, PathBuf};

/// One `copy` node, as planning sees it.
pub(super) struct CopyNode<'a> {
    pub src: &'a Spanned<String>,
    pub dest: &'a Spanned<String>,
    pub perms: Perms,
    pub exclude: &'a [Spanned<String>],
}

/// What a walk of a copied directory leaves out.
struct Filter<'a> {
    /// The copied directory, resolved.
    top: &'a Path,
    /// The recipe's directory, resolved: `.kilnignore` patterns are relative to it.
    root: &'a Path,
    cache: Option<&'a Path>,
    kilnignore: &'a Patterns,
    exclude: &'a Patterns,
}

impl Filter<'_> {
    /// Whether a walked path is left out, and whether nothing below it can be re-included.
    fn skips(&self, path: &Path, name: &str, is_dir: bool) -> (bool, bool) {
        if is_kiln_own(name) || self.cache.is_some_and(|c| c == path) {
            return (true, true);
        }
        if is_dir && path.join("oci-layout").is_file() {
            return (true, true);
        }
        let rel_top = path.strip_prefix(self.top).unwrap_or(path).to_string_lossy();
        let rel_root = path.strip_prefix(self.root).unwrap_or(path).to_string_lossy();
        if self.exclude.excluded(&rel_top) {
            return (true, !self.exclude.has_negations());
        }
        if self.kilnignore.excluded(&rel_root) {
            return (true, !self.kilnignore.has_negations());
        }
        (false, false)
    }
}

impl Resolver<'_> {
    fn problem(&mut self, key: String, span: SourceSpan, p: Problem) {
        self.once(key, span, p);
    }

    /// Where a source is, once every symlink on the way is followed; `None` (and a problem)
    /// when it does not exist or leads outside the recipe's directory.
    fn source_path(&mut self, rel: &str, src: &Spanned<String>, platform: Platform) -> Option<PathBuf> {
        if let Some(e) = self.kilnignore_error.take() {
            let p = Problem::new(Code::PlanKilnignore, src.span, format!("cannot use .kilnignore: {e}"))
                .label("copies with .kilnignore's patterns")
                .help("fix the pattern: .kilnignore takes .dockerignore patterns, one a line");
            self.problem("kilnignore".into(), src.span, p);
        }
        let abs = self.root.join(rel);
        let real = match std::fs::canonicalize(&abs) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (msg, label) = if has_placeholder(&src.value) {
                    (
                        format!("source `{rel}` not found (for {platform})"),
                        format!("`{rel}` does not exist for {platform}"),
                    )
                } else {
                    (format!("source `{rel}` not found"), "no such file or directory".to_string())
                };
                let help = format!("sources are relative to the recipe's directory ({})", self.real_root.display());
                let p = Problem::new(Code::PlanMissingSource, src.span, msg).label(label).help(help);
                self.problem(rel.to_string(), src.span, p);
                return None;
            }
            Err(e) => {
                let p = Problem::new(Code::PlanUnreadableSource, src.span, format!("cannot read `{rel}`: {e}"))
                    .label("named here");
                self.problem(rel.to_string(), src.span, p);
                return None;
            }
        };
        if !real.starts_with(&self.real_root) {
            let p = Problem::new(
                Code::RecipeSourceOutside,
                src.span,
                format!("source `{rel}` resolves to {}, outside the recipe's directory", real.display()),
            )
            .label("leads outside the recipe's directory")
            .help(format!(
                "copy sources must be inside {} (symlinks are followed to check); move the file there",
                self.real_root.display()
            ));
            self.problem(format!("outside:{rel}"), src.span, p);
            return None;
        }
        let rel_root = real.strip_prefix(&self.real_root).unwrap_or(&real).to_string_lossy().into_owned();
        let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let cache = self.real_cache.as_deref().is_some_and(|c| real.starts_with(c));
        if is_kiln_own(&name) || cache || (!rel_root.is_empty() && self.kilnignore.excluded(&rel_root)) {
            let why = if cache || is_kiln_own(&name) { "kiln's own files" } else { "excluded by .kilnignore" };
            let p = Problem::new(Code::PlanExcludedSource, src.span, format!("source `{rel}` is {why}"))
                .label(why)
                .help("kiln never copies .git, its cache, its output or what .kilnignore excludes");
            self.problem(format!("excluded:{rel}"), src.span, p);
            return None;
        }
        Some(real)
    }

    /// The entries of one `copy` node for one platform.
    pub(super) fn place_copy(&mut self, node: &CopyNode<'_>, platform: Platform) -> Option<Placed> {
        let CopyNode { src, dest, perms, .. } = *node;
        let rel = platform.expand(&src.value);
        let real = self.source_path(&rel, src, platform)?;
        let meta = match std::fs::metadata(&real) {
            Ok(m) => m,
            Err(e) => {
                let p = Problem::new(Code::PlanUnreadableSource, src.span, format!("cannot read `{rel}`: {e}"))
                    .label("named here");
                self.problem(rel.clone(), src.span, p);
                return None;
            }
        };
        if meta.is_file() {
            let path = if dest.value.ends_with('/') {
                let name = self.utf8_name(real.file_name().unwrap_or_default(), &real, src.span)?;
                join_image(&dest.value, &name)
            } else {
                dest.value.clone()
            };
            return self.file_entry(path, &real, rel, &meta, perms, src.span).map(|e| Placed::shared(vec![e]));
        }
        if !meta.is_dir() {
            let p = Problem::new(Code::PlanSpecialFile, src.span, format!("`{rel}` is neither a file nor a directory"))
                .label("cannot be copied");
            self.problem(rel.clone(), src.span, p);
            return None;
        }
        let exclude = match Patterns::new(node.exclude.iter().map(|e| e.value.as_str())) {
            Ok(p) => p,
            Err((i, msg)) => {
                let span = node.exclude[i].span;
                let p = Problem::new(Code::RecipeExcludePattern, span, msg)
                    .label("not a valid pattern")
                    .help("patterns are .dockerignore patterns: `*`, `?`, `**`, `[a-z]`, a leading `!` to re-include");
                self.problem(format!("exclude:{i}"), span, p);
                return None;
            }
        };
        self.copy_tree(node, &rel, &real, &exclude)
    }

    fn utf8_name(&mut self, name: &std::ffi::OsStr, path: &Path, span: SourceSpan) -> Option<String> {
        if let Some(n) = name.to_str() {
            return Some(n.to_string());
        }
        let dir = path.parent().unwrap_or(path);
        let p = Problem::new(
            Code::PlanNonUtf8Name,
            span,
            format!("`{}` in {} is not valid UTF-8", name.to_string_lossy(), dir.display()),
        )
        .label("copies a file whose name is not UTF-8")
        .help("rename it: kiln writes file names as UTF-8 and will not change or drop one");
        self.problem(format!("utf8:{}", path.display()), span, p);
        None
    }

    fn copy_tree(&mut self, node: &CopyNode<'_>, rel: &str, real: &Path, exclude: &Patterns) -> Option<Placed> {
        let CopyNode { src, dest, perms, .. } = *node;
        let mut entries = Vec::new();
        let top = dest.value.trim_end_matches('/').to_string();
        if !top.is_empty() {
            entries.push(Self::dir_entry(format!("{top}/"), perms));
        }
        let kilnignore = std::mem::take(&mut self.kilnignore);
        let real_root = self.real_root.clone();
        let real_cache = self.real_cache.clone();
        let filter =
            Filter { top: real, root: &real_root, cache: real_cache.as_deref(), kilnignore: &kilnignore, exclude };
        let mut ok = true;
        let mut walk = walkdir::WalkDir::new(real).min_depth(1).follow_links(false).sort_by_file_name().into_iter();
        while let Some(item) = walk.next() {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    let p = Problem::new(Code::PlanUnreadableSource, src.span, format!("cannot read `{rel}`: {e}"))
                        .label("named here");
                    self.problem(rel.to_string(), src.span, p);
                    ok = false;
                    break;
                }
            };
            let ft = item.file_type();
            let Some(name) = self.utf8_name(item.file_name(), item.path(), src.span) else {
                ok = false;
                continue;
            };
            let (skip, prune) = filter.skips(item.path(), &name, ft.is_dir());
            if skip {
                if prune && ft.is_dir() {
                    walk.skip_current_dir();
                }
                continue;
            }
            let sub = item.path().strip_prefix(real).unwrap_or(item.path()).to_string_lossy().into_owned();
            let image_path = join_image(&top, &sub);
            let src_rel = format!("{}/{}", rel.trim_end_matches('/'), sub);
            if let Some(e) = self.tree_entry(&item, image_path, src_rel, perms, src.span) {
                entries.push(e);
            }
        }
        self.kilnignore = kilnignore;
        ok.then(|| Placed::shared(entries))
    }

    /// One walked path as an entry: a directory, a symlink (kept as a link) or a file.
    fn tree_entry(
        &mut self,
        item: &walkdir::DirEntry,
        image_path: String,
        src_rel: String,
        perms: Perms,
        span: SourceSpan,
    ) -> Option<Entry> {
        let ft = item.file_type();
        if ft.is_dir() {
            return Some(Self::dir_entry(format!("{image_path}/"), perms));
        }
        if ft.is_symlink() {
            let target = match std::fs::read_link(item.path()) {
                Ok(t) => t,
                Err(e) => {
                    let p = Problem::new(Code::PlanUnreadableSource, span, format!("cannot read `{src_rel}`: {e}"))
                        .label("named here");
                    self.problem(src_rel, span, p);
                    return None;
                }
            };
            let target = self.utf8_name(target.as_os_str(), item.path(), span)?;
            return Some(Entry {
                source: Some(src_rel),
                target: Some(target),
                ..Entry::new(image_path, EntryKind::Symlink, 0o777, perms.uid.unwrap_or(0), perms.gid.unwrap_or(0))
            });
        }
        if !ft.is_file() {
            let p = Problem::new(
                Code::PlanSpecialFile,
                span,
                format!("`{src_rel}` is neither a file, a directory nor a symlink"),
            )
            .label("copies a special file");
            self.problem(src_rel, span, p);
            return None;
        }
        match item.metadata() {
            Ok(meta) => self.file_entry(image_path, item.path(), src_rel, &meta, perms, span),
            Err(e) => {
                let p = Problem::new(Code::PlanUnreadableSource, span, format!("cannot read `{src_rel}`: {e}"))
                    .label("named here");
                self.problem(src_rel, span, p);
                None
            }
        }
    }
}
