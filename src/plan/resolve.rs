//! Recipe + file system → [`Plan`]. The only part of planning that reads files: it hashes every
//! source, expands directories and per-platform placeholders, and checks what the text alone
//! cannot (missing sources, two nodes writing the same path).

use super::*;
use crate::diag::Problem;
use crate::platform::has_placeholder;
use crate::recipe::{Base, Content, ImageSpec, Perms, Recipe};
use miette::SourceSpan;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What the plan depends on besides the recipe.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The recipe's directory: `copy` sources are relative to it.
    pub root: PathBuf,
    /// `SOURCE_DATE_EPOCH`, when set; it wins over the recipe's `epoch`.
    pub source_date_epoch: Option<u64>,
    /// Build only these platforms (of those each image asks for); empty means all.
    pub platforms: Vec<Platform>,
    /// Build only these images; empty means all.
    pub images: Vec<String>,
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves a parsed recipe into a plan, or every problem found.
pub fn resolve(recipe: &Recipe, opts: &PlanOptions) -> Result<Plan, Vec<Problem>> {
    let (epoch, epoch_source) = match (opts.source_date_epoch, &recipe.defaults.epoch) {
        (Some(e), _) => (e, EpochSource::SourceDateEpoch),
        (None, Some(e)) => (e.value, EpochSource::Recipe),
        (None, None) => (0, EpochSource::Default),
    };
    let compression = recipe.defaults.compression.as_ref().map(|c| c.value).unwrap_or(Compression::DEFAULT);
    let mut r = Resolver { root: &opts.root, problems: Vec::new(), hashes: BTreeMap::new(), reported: BTreeSet::new() };
    let mut images = Vec::new();
    for spec in &recipe.images {
        if !opts.images.is_empty() && !opts.images.contains(&spec.name.value) {
            continue;
        }
        let wanted = spec.platforms.as_ref().or(recipe.defaults.platforms.as_ref());
        let mut platforms: Vec<Platform> = match wanted {
            Some(list) => list.iter().map(|p| p.value).collect(),
            None => Platform::ALL.to_vec(),
        };
        if !opts.platforms.is_empty() {
            platforms.retain(|p| opts.platforms.contains(p));
        }
        images.push(r.image(spec, &platforms, epoch, compression));
    }
    if r.problems.is_empty() {
        Ok(Plan { plan_format: PLAN_FORMAT, epoch, epoch_source, compression, images })
    } else {
        Err(r.problems)
    }
}

/// Files one content node contributes, before layering.
struct Placed {
    entries: Vec<Entry>,
}

struct Resolver<'a> {
    root: &'a Path,
    problems: Vec<Problem>,
    /// Source hashes by path, so a file shared by platforms or images is read once.
    hashes: BTreeMap<PathBuf, (String, u64)>,
    /// Problems already reported, so a missing file is not reported once per platform.
    reported: BTreeSet<(String, usize)>,
}

fn join_image(dest_dir: &str, rel: &str) -> String {
    format!("{}/{}", dest_dir.trim_end_matches('/'), rel)
}

fn default_mode(meta: &std::fs::Metadata) -> u32 {
    if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 }
}

impl Resolver<'_> {
    fn once(&mut self, key: String, span: SourceSpan, p: Problem) {
        if self.reported.insert((key, span.offset())) {
            self.problems.push(p);
        }
    }

    fn hash(&mut self, path: &Path) -> std::io::Result<(String, u64)> {
        if let Some(h) = self.hashes.get(path) {
            return Ok(h.clone());
        }
        let h = crate::digest::sha256_reader(std::fs::File::open(path)?)?;
        self.hashes.insert(path.to_path_buf(), h.clone());
        Ok(h)
    }

    fn file_entry(
        &mut self,
        path: String,
        abs: &Path,
        rel: String,
        meta: &std::fs::Metadata,
        perms: Perms,
        span: SourceSpan,
    ) -> Option<Entry> {
        match self.hash(abs) {
            Ok((sha, size)) => Some(Entry {
                path,
                kind: EntryKind::File,
                mode: perms.mode.unwrap_or_else(|| default_mode(meta)),
                uid: perms.uid.unwrap_or(0),
                gid: perms.gid.unwrap_or(0),
                size: Some(size),
                sha256: Some(sha),
                source: Some(rel),
                content: None,
                target: None,
            }),
            Err(e) => {
                let msg = format!("cannot read `{rel}`: {e}");
                self.once(
                    rel.clone(),
                    span,
                    Problem::new("kiln::plan::unreadable_source", span, msg).label("named here"),
                );
                None
            }
        }
    }

    fn dir_entry(path: String, perms: Perms) -> Entry {
        Entry {
            path,
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: perms.uid.unwrap_or(0),
            gid: perms.gid.unwrap_or(0),
            size: None,
            sha256: None,
            source: None,
            content: None,
            target: None,
        }
    }

    /// Resolves one content node for one platform.
    fn place(&mut self, content: &Content, platform: Platform) -> Option<Placed> {
        match content {
            Content::File { dest, content, perms, .. } => {
                let bytes = content.as_bytes();
                Some(Placed {
                    entries: vec![Entry {
                        path: dest.value.clone(),
                        kind: EntryKind::File,
                        mode: perms.mode.unwrap_or(0o644),
                        uid: perms.uid.unwrap_or(0),
                        gid: perms.gid.unwrap_or(0),
                        size: Some(bytes.len() as u64),
                        sha256: Some(crate::digest::sha256_hex(bytes)),
                        source: None,
                        content: Some(content.clone()),
                        target: None,
                    }],
                })
            }
            Content::Copy { src, dest, perms, .. } => {
                let rel = platform.expand(&src.value);
                let abs = self.root.join(&rel);
                let meta = match std::fs::metadata(&abs) {
                    Ok(m) => m,
                    Err(_) => {
                        let (msg, label) = if has_placeholder(&src.value) {
                            (
                                format!("source `{rel}` not found (for {platform})"),
                                format!("`{rel}` does not exist for {platform}"),
                            )
                        } else {
                            (format!("source `{rel}` not found"), "no such file or directory".to_string())
                        };
                        let help = format!("sources are relative to the recipe's directory ({})", self.root.display());
                        self.once(
                            rel.clone(),
                            src.span,
                            Problem::new("kiln::plan::missing_source", src.span, msg).label(label).help(help),
                        );
                        return None;
                    }
                };
                if meta.is_file() {
                    let path = if dest.value.ends_with('/') {
                        let name = abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        join_image(&dest.value, &name)
                    } else {
                        dest.value.clone()
                    };
                    return self
                        .file_entry(path, &abs, rel, &meta, *perms, src.span)
                        .map(|e| Placed { entries: vec![e] });
                }
                if !meta.is_dir() {
                    self.once(
                        rel.clone(),
                        src.span,
                        Problem::new(
                            "kiln::plan::special_file",
                            src.span,
                            format!("`{rel}` is neither a file nor a directory"),
                        )
                        .label("cannot be copied"),
                    );
                    return None;
                }
                let mut entries = Vec::new();
                let top = dest.value.trim_end_matches('/').to_string();
                if !top.is_empty() {
                    entries.push(Self::dir_entry(format!("{top}/"), *perms));
                }
                for item in walkdir::WalkDir::new(&abs).min_depth(1).follow_links(false).sort_by_file_name() {
                    let item = match item {
                        Ok(i) => i,
                        Err(e) => {
                            self.once(
                                rel.clone(),
                                src.span,
                                Problem::new(
                                    "kiln::plan::unreadable_source",
                                    src.span,
                                    format!("cannot read `{rel}`: {e}"),
                                )
                                .label("named here"),
                            );
                            return None;
                        }
                    };
                    let sub = item.path().strip_prefix(&abs).unwrap_or(item.path()).to_string_lossy().into_owned();
                    let image_path = join_image(&top, &sub);
                    let src_rel = format!("{}/{}", rel.trim_end_matches('/'), sub);
                    let ft = item.file_type();
                    if ft.is_dir() {
                        entries.push(Self::dir_entry(format!("{image_path}/"), *perms));
                    } else if ft.is_symlink() {
                        let target = std::fs::read_link(item.path())
                            .map(|t| t.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        entries.push(Entry {
                            path: image_path,
                            kind: EntryKind::Symlink,
                            mode: 0o777,
                            uid: perms.uid.unwrap_or(0),
                            gid: perms.gid.unwrap_or(0),
                            size: None,
                            sha256: None,
                            source: Some(src_rel),
                            content: None,
                            target: Some(target),
                        });
                    } else if ft.is_file() {
                        let meta = match item.metadata() {
                            Ok(m) => m,
                            Err(e) => {
                                self.once(
                                    src_rel.clone(),
                                    src.span,
                                    Problem::new(
                                        "kiln::plan::unreadable_source",
                                        src.span,
                                        format!("cannot read `{src_rel}`: {e}"),
                                    )
                                    .label("named here"),
                                );
                                continue;
                            }
                        };
                        if let Some(e) = self.file_entry(image_path, item.path(), src_rel, &meta, *perms, src.span) {
                            entries.push(e);
                        }
                    } else {
                        self.once(
                            src_rel.clone(),
                            src.span,
                            Problem::new(
                                "kiln::plan::special_file",
                                src.span,
                                format!("`{src_rel}` is neither a file, a directory nor a symlink"),
                            )
                            .label("copies a special file"),
                        );
                    }
                }
                Some(Placed { entries })
            }
        }
    }

    fn image(&mut self, spec: &ImageSpec, platforms: &[Platform], epoch: u64, compression: Compression) -> ImagePlan {
        let base = match spec.base.value {
            Base::Scratch => "scratch",
        };
        let mut annotations = spec.annotations.clone();
        annotations.insert("org.opencontainers.image.created".into(), rfc3339(epoch));
        annotations.insert("dev.kiln.compression".into(), compression.describe());
        let config = config(spec);
        // Platform-independent nodes are resolved once and shared by every platform.
        let shared: Vec<Option<Placed>> = spec
            .contents
            .iter()
            .map(|c| match c {
                Content::Copy { src, .. } if has_placeholder(&src.value) => None,
                _ => self.place(c, platforms.first().copied().unwrap_or(Platform::LinuxAmd64)),
            })
            .collect();
        let mut out = Vec::new();
        for &platform in platforms {
            let mut placed: Vec<(usize, Placed)> = Vec::new();
            for (i, c) in spec.contents.iter().enumerate() {
                let p = match c {
                    Content::Copy { src, .. } if has_placeholder(&src.value) => self.place(c, platform),
                    _ => shared[i].as_ref().map(|p| Placed { entries: p.entries.clone() }),
                };
                if let Some(p) = p {
                    placed.push((i, p));
                }
            }
            self.check_conflicts(spec, &placed);
            let mut layers = Vec::new();
            let shared_entries: Vec<Entry> = placed
                .iter()
                .filter(|(i, _)| !is_per_platform(&spec.contents[*i]))
                .flat_map(|(_, p)| p.entries.iter().cloned())
                .collect();
            if !shared_entries.is_empty() {
                layers.push(layer(
                    "files",
                    "kiln: files shared by all platforms".into(),
                    shared_entries,
                    compression,
                    epoch,
                ));
            }
            for (i, p) in placed.iter().filter(|(i, _)| is_per_platform(&spec.contents[*i])) {
                if let Content::Copy { src, dest, .. } = &spec.contents[*i] {
                    let name = format!("copy {}", src.value);
                    layers.push(layer(
                        &name,
                        format!("kiln: copy {} {}", src.value, dest.value),
                        p.entries.clone(),
                        compression,
                        epoch,
                    ));
                }
            }
            out.push(PlatformPlan { platform, config: config.clone(), layers });
        }
        ImagePlan { name: spec.name.value.clone(), base: base.into(), annotations, platforms: out }
    }

    /// Two nodes may share directories but never a file path.
    fn check_conflicts(&mut self, spec: &ImageSpec, placed: &[(usize, Placed)]) {
        let mut owner: BTreeMap<String, (usize, EntryKind)> = BTreeMap::new();
        for (i, p) in placed {
            for e in &p.entries {
                let key = e.path.trim_end_matches('/').to_string();
                match owner.get(&key) {
                    Some((j, kind)) if *j != *i && !(*kind == EntryKind::Dir && e.kind == EntryKind::Dir) => {
                        let first = spec.contents[*j].dest().span;
                        let here = spec.contents[*i].dest().span;
                        let msg = format!("`{key}` is written by two nodes");
                        self.once(
                            format!("dup:{key}"),
                            here,
                            Problem::new("kiln::plan::duplicate_destination", here, msg)
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
                        let here = spec.contents[i].dest().span;
                        let first = spec.contents[*j].dest().span;
                        self.once(
                            format!("parent:{up}"),
                            here,
                            Problem::new(
                                "kiln::plan::duplicate_destination",
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

fn is_per_platform(c: &Content) -> bool {
    matches!(c, Content::Copy { src, .. } if has_placeholder(&src.value))
}

fn config(spec: &ImageSpec) -> ConfigPlan {
    let mut env = Vec::new();
    if !spec.env.iter().any(|(k, _)| k == "PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    ConfigPlan {
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env,
        user: spec.user.clone(),
        workdir: spec.workdir.clone(),
        exposed_ports: spec.expose.clone(),
        labels: spec.labels.clone(),
    }
}

/// Sorts entries, adds missing parent directories and computes the layer id.
fn layer(name: &str, created_by: String, mut entries: Vec<Entry>, compression: Compression, epoch: u64) -> LayerPlan {
    let present: BTreeSet<String> = entries.iter().map(|e| e.path.trim_end_matches('/').to_string()).collect();
    let mut parents = BTreeSet::new();
    for e in &entries {
        let mut p = e.path.trim_end_matches('/');
        while let Some((up, _)) = p.rsplit_once('/') {
            if up.is_empty() {
                break;
            }
            if !present.contains(up) {
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
    let identity: Vec<Entry> = entries.iter().cloned().map(|e| Entry { source: None, ..e }).collect();
    let id = crate::digest::sha256_hex(&crate::canonical::to_vec(&(&compression, epoch, &identity)));
    LayerPlan { id, name: name.into(), created_by, entries }
}
