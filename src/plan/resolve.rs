//! Recipe + file system → [`Plan`]. The only part of planning that reads files: it hashes every
//! source, expands directories and per-platform placeholders, and checks what the text alone
//! cannot (missing sources, two nodes writing the same path).

mod copy;
mod user;

use super::layering::{NamedLayer, Unit, Volatility, assign};
use super::*;
use crate::baseview::BaseView;
use crate::diag::Problem;
use crate::platform::has_placeholder;
use crate::recipe::{Base, Content, ImageSpec, Perms, Recipe, RustSpec};
use crate::toolchain::rust;
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
    /// kiln's cache directory, left out of source hashes.
    pub cache_dir: Option<PathBuf>,
    /// The lock and unpacked packages, when an image has a distroless base.
    pub debian: Option<crate::base::DebianInputs>,
    /// Layer keys of a previous release by (image, platform), whose order is kept.
    pub previous: Option<BTreeMap<(String, Platform), Vec<String>>>,
}

/// Layers an image may have unless the recipe says otherwise (containerd's limit is 127).
pub const DEFAULT_LAYER_BUDGET: usize = 64;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves a parsed recipe into a plan, or every problem found.
pub fn resolve(recipe: &Recipe, opts: &PlanOptions) -> Result<Plan, Vec<Problem>> {
    let (epoch, epoch_source) = match (opts.source_date_epoch, &recipe.defaults.epoch) {
        (Some(e), _) => (e, EpochSource::SourceDateEpoch),
        (None, Some(e)) => (e.value, EpochSource::Recipe),
        (None, None) => (0, EpochSource::Default),
    };
    let compression = recipe.defaults.compression.as_ref().map(|c| c.value).unwrap_or(Compression::DEFAULT);
    let real_root = std::fs::canonicalize(&opts.root).unwrap_or_else(|_| opts.root.clone());
    let (kilnignore, kilnignore_error) = read_kilnignore(&opts.root);
    let mut r = Resolver {
        root: &opts.root,
        real_root,
        real_cache: opts.cache_dir.as_ref().and_then(|c| std::fs::canonicalize(c).ok()),
        kilnignore,
        kilnignore_error,
        cache_dir: opts.cache_dir.clone(),
        problems: Vec::new(),
        hashes: BTreeMap::new(),
        reported: BTreeSet::new(),
        probe: None,
        packages: BTreeMap::new(),
        sources: BTreeMap::new(),
        rust: Vec::new(),
        epoch,
        debian: opts.debian.as_ref(),
        previous: opts.previous.as_ref(),
        named: &recipe.layers.named,
        budget: recipe.layers.budget.unwrap_or(DEFAULT_LAYER_BUDGET),
    };
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
        let debian =
            opts.debian.as_ref().filter(|_| recipe.images.iter().any(|i| matches!(i.base.value, Base::Distroless(_))));
        let debian = debian.map(|d| DebianPlan {
            mirror: d.lock.mirror.clone(),
            suite: d.lock.suite.clone(),
            release: d.lock.release.clone(),
        });
        Ok(Plan { plan_format: PLAN_FORMAT, epoch, epoch_source, compression, debian, rust: r.rust, images })
    } else {
        Err(r.problems)
    }
}

/// Files one content node contributes, before layering.
struct Placed {
    entries: Vec<Entry>,
    /// Name and history line of the node's own layer, for per-platform nodes.
    layer: Option<(String, String)>,
}

impl Placed {
    fn shared(entries: Vec<Entry>) -> Placed {
        Placed { entries, layer: None }
    }
}

struct Resolver<'a> {
    root: &'a Path,
    /// The recipe's directory with every symlink resolved: no source may lead outside it.
    real_root: PathBuf,
    /// kiln's cache, resolved, when it exists: never copied into an image.
    real_cache: Option<PathBuf>,
    /// The patterns of `.kilnignore` beside the recipe.
    kilnignore: crate::ignore::Patterns,
    /// Why `.kilnignore` could not be used, reported at the first `copy`.
    kilnignore_error: Option<String>,
    cache_dir: Option<PathBuf>,
    epoch: u64,
    debian: Option<&'a crate::base::DebianInputs>,
    previous: Option<&'a BTreeMap<(String, Platform), Vec<String>>>,
    named: &'a [NamedLayer],
    budget: usize,
    problems: Vec<Problem>,
    /// The Rust toolchain, probed when the first `rust` node needs it.
    probe: Option<Result<rust::Probe, rust::Missing>>,
    /// cargo_metadata results by (manifest, package).
    packages: BTreeMap<(PathBuf, String), Result<rust::Package, rust::Missing>>,
    /// Source hashes by workspace root.
    sources: BTreeMap<PathBuf, (usize, String)>,
    rust: Vec<RustBuild>,
    /// Source hashes by path, so a file shared by platforms or images is read once.
    hashes: BTreeMap<PathBuf, (String, u64)>,
    /// Problems already reported, so a missing file is not reported once per platform.
    reported: BTreeSet<(String, usize)>,
}

/// The `.kilnignore` beside the recipe (none: no patterns), or why it cannot be used.
fn read_kilnignore(root: &Path) -> (crate::ignore::Patterns, Option<String>) {
    let path = root.join(crate::ignore::KILNIGNORE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match crate::ignore::Patterns::from_file(&text) {
            Ok(p) => (p, None),
            Err((line, e)) => (Default::default(), Some(format!("{}:{line}: {e}", path.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Default::default(), None),
        Err(e) => (Default::default(), Some(format!("cannot read {}: {e}", path.display()))),
    }
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
                build: None,
                from: None,
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
        Entry::dir(path, 0o755, perms.uid.unwrap_or(0), perms.gid.unwrap_or(0))
    }

    /// Resolves one content node for one platform.
    fn place(&mut self, content: &Content, platform: Platform) -> Option<Placed> {
        let mut placed = self.place_files(content, platform)?;
        if let Content::Copy { src, dest, .. } = content
            && has_placeholder(&src.value)
        {
            placed.layer = Some((format!("copy {}", src.value), format!("kiln: copy {} {}", src.value, dest.value)));
        }
        Some(placed)
    }

    fn place_files(&mut self, content: &Content, platform: Platform) -> Option<Placed> {
        match content {
            Content::Rust(spec) => self.rust(spec, platform),
            Content::File { dest, content, perms, .. } => {
                let bytes = content.as_bytes();
                Some(Placed::shared(vec![Entry {
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
                    build: None,
                    from: None,
                }]))
            }
            Content::Copy { src, dest, perms, .. } => {
                let node = copy::CopyNode { src, dest, perms: *perms, exclude: &[] };
                self.place_copy(&node, platform)
            }
        }
    }

    fn image(&mut self, spec: &ImageSpec, platforms: &[Platform], epoch: u64, compression: Compression) -> ImagePlan {
        let base = match &spec.base.value {
            Base::Scratch => "scratch".to_string(),
            Base::Distroless(f) => f.name().to_string(),
            Base::OciLayout { path, tag } => {
                format!("oci-layout:{path}{}", tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default())
            }
            Base::Registry(r) => r.clone(),
        };
        let mut annotations = spec.annotations.clone();
        annotations.insert("org.opencontainers.image.created".into(), rfc3339(epoch));
        annotations.insert("dev.kiln.compression".into(), compression.describe());
        let config = config(spec);
        // Platform-independent nodes are resolved once and shared by every platform.
        let shared: Vec<Option<Placed>> = spec
            .contents
            .iter()
            .map(|c| match is_per_platform(c) {
                true => None,
                false => self.place(c, platforms.first().copied().unwrap_or(Platform::LinuxAmd64)),
            })
            .collect();
        let mut out = Vec::new();
        for &platform in platforms {
            let mut placed: Vec<(usize, Placed)> = Vec::new();
            for (i, c) in spec.contents.iter().enumerate() {
                let p = match is_per_platform(c) {
                    true => self.place(c, platform),
                    false => shared[i].as_ref().map(|p| Placed::shared(p.entries.clone())),
                };
                if let Some(p) = p {
                    placed.push((i, p));
                }
            }
            let mut config = config.clone();
            let (mut layers, view) = self.base_layers(spec, platform, &mut config, compression, epoch);
            self.follow_base_links(spec, &view, &mut placed);
            self.check_conflicts(spec, &placed);
            self.settle_user(spec, &view, &placed, &mut config);
            let units: Vec<Unit> = placed.into_iter().filter_map(|(i, p)| unit(&spec.contents[i], p)).collect();
            let previous = self.previous.and_then(|m| m.get(&(spec.name.value.clone(), platform))).map(Vec::as_slice);
            layers.extend(
                assign(units, self.named, previous).into_iter().map(|u| layer_over(u, compression, epoch, &view)),
            );
            if layers.len() > self.budget {
                let p = Problem::new("kiln::plan::layer_budget", spec.name.span, format!("image `{}` needs {} layers for {platform}, over the budget of {}", spec.name.value, layers.len(), self.budget))
                    .label("too many layers")
                    .help("group paths with `layers { layer \"NAME\" { path \"/prefix/\" } }`, or raise `layers { budget N }` (containerd allows 127)");
                self.once(format!("budget {platform}"), spec.name.span, p);
            }
            out.push(PlatformPlan { platform, config, layers });
        }
        ImagePlan { name: spec.name.value.clone(), base, annotations, platforms: out }
    }

    /// Moves entries below a base symlink to where the link points (a file at `/bin/tool` on a
    /// base whose `/bin` links to `usr/bin` goes to `/usr/bin/tool`), so the base's links stay
    /// links. A directory entry follows a link at its own path too.
    fn follow_base_links(&mut self, spec: &ImageSpec, view: &BaseView, placed: &mut [(usize, Placed)]) {
        if view.is_empty() {
            return;
        }
        for (i, p) in placed.iter_mut() {
            for e in &mut p.entries {
                let dir = e.kind == EntryKind::Dir;
                match view.resolve(&e.path, dir) {
                    Ok(r) if dir && r != "/" => e.path = format!("{r}/"),
                    Ok(r) if !dir => e.path = r,
                    Ok(_) => {}
                    Err(msg) => {
                        let span = spec.contents[*i].dest_span();
                        let problem =
                            Problem::new("kiln::plan::base_symlink", span, msg).label("writes below this path");
                        self.once(format!("links:{}", e.path), span, problem);
                    }
                }
            }
        }
    }

    /// Two nodes may share directories but never a file path.
    fn check_conflicts(&mut self, spec: &ImageSpec, placed: &[(usize, Placed)]) {
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
                        let here = spec.contents[i].dest_span();
                        let first = spec.contents[*j].dest_span();
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

impl Resolver<'_> {
    /// The base's layers for one platform (and what its configuration brings).
    fn base_layers(
        &mut self,
        spec: &ImageSpec,
        platform: Platform,
        config: &mut ConfigPlan,
        compression: Compression,
        epoch: u64,
    ) -> (Vec<LayerPlan>, BaseView) {
        let span = spec.base.span;
        match &spec.base.value {
            Base::Scratch => (Vec::new(), BaseView::default()),
            Base::Distroless(flavour) => {
                let Some(inputs) = self.debian else {
                    let p = Problem::new(
                        "kiln::plan::missing_lock",
                        span,
                        format!("{} needs pinned Debian packages, and there is no kiln.lock", flavour.name()),
                    )
                    .label("needs kiln.lock")
                    .help("run `kiln lock` beside the recipe (it resolves and pins the packages), then build again");
                    self.once("missing_lock".into(), span, p);
                    return (Vec::new(), BaseView::default());
                };
                match crate::base::distroless_layers(*flavour, platform, inputs) {
                    Ok(base) => {
                        crate::base::distroless_config(config);
                        let layers: Vec<LayerPlan> = base
                            .into_iter()
                            .map(|b| {
                                let unit = Unit {
                                    reason: super::layering::reason(&b.key),
                                    key: b.key,
                                    volatility: Volatility::Base,
                                    name: b.name,
                                    created_by: b.created_by,
                                    entries: b.entries,
                                };
                                layer(unit, compression, epoch)
                            })
                            .collect();
                        let view = BaseView::from_entries(layers.iter().map(|l| l.entries.as_slice()));
                        (layers, view)
                    }
                    Err(e) => {
                        let p = Problem::new(
                            "kiln::plan::stale_lock",
                            span,
                            format!("kiln.lock does not cover {} for {platform}: {e}", flavour.name()),
                        )
                        .label("not in kiln.lock")
                        .help("run `kiln lock` again: the recipe asks for packages the lock does not pin");
                        self.once(format!("stale:{e}"), span, p);
                        (Vec::new(), BaseView::default())
                    }
                }
            }
            Base::OciLayout { path, tag } => {
                let dir = self.root.join(path);
                let found = crate::base::from_layout(&dir, path, tag.as_deref(), platform)
                    .and_then(|b| BaseView::from_layers(&dir, &b.layers).map(|v| (b, v)));
                match found {
                    Ok((base, view)) => {
                        crate::base::inherit(config, &base.config, &spec.env, spec.entrypoint.is_some());
                        let layers = base
                            .layers
                            .into_iter()
                            .map(|p| LayerPlan {
                                id: crate::digest::sha256_hex(format!("prebuilt {}", p.digest).as_bytes()),
                                key: format!("base {}", p.digest),
                                reason: super::layering::reason(&format!("base {}", p.digest)),
                                volatility: Volatility::Base,
                                name: format!("base layer {}", p.digest.get(7..19).unwrap_or(&p.digest)),
                                created_by: p.created_by.clone(),
                                entries: Vec::new(),
                                prebuilt: Some(p),
                            })
                            .collect();
                        (layers, view)
                    }
                    Err(e) => {
                        let p = Problem::new("kiln::plan::base_layout", span, format!("cannot use the base: {e}"))
                            .label("this base");
                        self.once(format!("layout:{e}"), span, p);
                        (Vec::new(), BaseView::default())
                    }
                }
            }
            Base::Registry(r) => {
                let p = Problem::new("kiln::plan::registry_base", span, format!("bases from a registry (`{r}`) are not supported yet"))
                    .label("a registry base")
                    .help("copy it into an OCI layout (`skopeo copy docker://REF oci:base:TAG`) and write base \"oci-layout:base:TAG\"");
                self.once("registry".into(), span, p);
                (Vec::new(), BaseView::default())
            }
        }
    }

    fn probe(&mut self) -> Result<rust::Probe, rust::Missing> {
        let root = self.root;
        self.probe.get_or_insert_with(|| rust::Probe::detect(root)).clone()
    }

    fn missing(&mut self, span: SourceSpan, m: rust::Missing) {
        let p = Problem::new(m.code, span, m.message.clone()).label("needed here").help(m.help);
        self.once(format!("{}:{}", m.code, m.message), span, p);
    }

    /// A `rust` node for one platform: finds the package and binary, checks the toolchain,
    /// hashes the inputs and records the build.
    fn rust(&mut self, spec: &RustSpec, platform: Platform) -> Option<Placed> {
        let pkg_span = spec.package.span;
        let probe = self.probe().map_err(|m| self.missing(pkg_span, m)).ok()?;
        let (manifest_rel, manifest_span) = match &spec.manifest {
            Some(m) => (m.value.clone(), m.span),
            None => ("Cargo.toml".to_string(), pkg_span),
        };
        let manifest = self.root.join(&manifest_rel);
        if !manifest.is_file() {
            let m = rust::Missing {
                code: "kiln::plan::missing_manifest",
                message: format!("no cargo manifest at `{manifest_rel}`"),
                help: format!(
                    "put the recipe beside Cargo.toml, or name it: `manifest \"path/Cargo.toml\"` (relative to {})",
                    self.root.display()
                ),
            };
            self.missing(manifest_span, m);
            return None;
        }
        let key = (manifest.clone(), spec.package.value.clone());
        if !self.packages.contains_key(&key) {
            let found = rust::find_package(&probe, &manifest, &spec.package.value);
            self.packages.insert(key.clone(), found);
        }
        let pkg = self.packages[&key].clone().map_err(|m| self.missing(pkg_span, m)).ok()?;
        // The binary is made from the workspace's sources: they must all be the project's.
        let workspace = std::fs::canonicalize(&pkg.workspace_root).unwrap_or_else(|_| pkg.workspace_root.clone());
        if !workspace.starts_with(&self.real_root) {
            let m = rust::Missing {
                code: "kiln::recipe::source_outside",
                message: format!(
                    "the cargo workspace of `{manifest_rel}` is {}, outside the recipe's directory",
                    workspace.display()
                ),
                help: format!(
                    "put kiln.kdl at the workspace root ({}) and name the package's manifest with `manifest`",
                    workspace.display()
                ),
            };
            self.missing(manifest_span, m);
            return None;
        }
        let bin = match &spec.bin {
            Some(b) if pkg.bins.contains(&b.value) => b.value.clone(),
            Some(b) => {
                let m = rust::Missing {
                    code: "kiln::plan::unknown_bin",
                    message: format!("package `{}` has no binary `{}`", spec.package.value, b.value),
                    help: format!("its binaries: {}", pkg.bins.join(", ")),
                };
                self.missing(b.span, m);
                return None;
            }
            None if pkg.bins.len() == 1 => pkg.bins[0].clone(),
            None => match &pkg.default_run {
                Some(d) => d.clone(),
                None => {
                    let m = rust::Missing {
                        code: "kiln::plan::unknown_bin",
                        message: format!("package `{}` has {} binaries; say which", spec.package.value, pkg.bins.len()),
                        help: format!("add `bin \"NAME\"` with one of: {}", pkg.bins.join(", ")),
                    };
                    self.missing(pkg_span, m);
                    return None;
                }
            },
        };
        let lockfile = pkg.workspace_root.join("Cargo.lock");
        let Ok((lock_sha, _)) = std::fs::File::open(&lockfile).and_then(crate::digest::sha256_reader) else {
            let m = rust::Missing {
                code: "kiln::plan::missing_lockfile",
                message: format!("`{}` has no Cargo.lock", pkg.workspace_root.display()),
                help: format!(
                    "kiln builds with --locked: run `cargo generate-lockfile` in {} and commit Cargo.lock",
                    pkg.workspace_root.display()
                ),
            };
            self.missing(pkg_span, m);
            return None;
        };
        let triple_override = spec.targets.iter().find(|(p, _)| *p == platform).map(|(_, t)| t);
        let target_span = triple_override.map(|t| t.span).unwrap_or(pkg_span);
        let target = rust::target(platform, triple_override.map(|t| t.value.as_str()), &probe)
            .map_err(|m| self.missing(target_span, m))
            .ok()?;
        if !self.sources.contains_key(&pkg.workspace_root) {
            let mut skip = vec![pkg.target_directory.clone()];
            skip.extend(self.cache_dir.clone());
            match rust::hash_sources(&pkg.workspace_root, &skip) {
                Ok(h) => {
                    self.sources.insert(pkg.workspace_root.clone(), h);
                }
                Err(e) => {
                    let m = rust::Missing {
                        code: "kiln::plan::unreadable_source",
                        message: format!("cannot read the sources of {}: {e}", pkg.workspace_root.display()),
                        help: "check the files' permissions".into(),
                    };
                    self.missing(pkg_span, m);
                    return None;
                }
            }
        }
        let (source_files, sources_sha256) = self.sources[&pkg.workspace_root].clone();
        let mut rustflags = target.link_flags.clone();
        for (var, to) in [
            ("workspace", "/kiln/src"),
            ("cargo_home", "/kiln/cargo"),
            ("sysroot", "/kiln/rust"),
            ("target_dir", "/kiln/target"),
        ] {
            rustflags.push(format!("--remap-path-prefix=${{{var}}}={to}"));
        }
        let root = std::fs::canonicalize(self.root).unwrap_or_else(|_| self.root.to_path_buf());
        let rel = |p: &Path| {
            p.strip_prefix(&root)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_else(|_| p.to_string_lossy().into_owned())
        };
        let mut build = RustBuild {
            id: String::new(),
            package: spec.package.value.clone(),
            bin: bin.clone(),
            manifest: manifest_rel,
            workspace: match rel(&pkg.workspace_root) {
                r if r.is_empty() => ".".into(),
                r => r,
            },
            platform,
            triple: target.triple.clone(),
            profile: spec.profile.clone(),
            features: spec.features.clone(),
            no_default_features: spec.no_default_features,
            rustflags,
            linker: target.linker_desc.clone(),
            strip: target.strip_desc.clone(),
            rustc: probe.rustc_version.clone(),
            cargo: probe.cargo_version.clone(),
            lockfile_sha256: lock_sha,
            source_files,
            sources_sha256,
            network: probe.isolation,
            require_static: true,
            exec: RustExec {
                workspace: pkg.workspace_root.clone(),
                manifest: std::fs::canonicalize(&manifest).unwrap_or(manifest),
                cargo: probe.cargo.clone(),
                rustc: probe.rustc.clone(),
                sysroot: probe.sysroot.clone(),
                cargo_home: probe.cargo_home.clone(),
                linker: target.linker.clone(),
                strip: target.strip.clone(),
            },
        };
        let identity = (env!("CARGO_PKG_VERSION"), self.epoch, &build);
        build.id = crate::digest::sha256_hex(&crate::canonical::to_vec(&identity));
        let dest = spec.dest.as_ref().map(|d| d.value.clone()).unwrap_or_else(|| format!("/usr/local/bin/{bin}"));
        let entry = Entry {
            path: dest,
            kind: EntryKind::File,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: None,
            sha256: None,
            source: None,
            content: None,
            target: None,
            build: Some(build.id.clone()),
            from: None,
        };
        let layer = (
            format!("rust {}/{bin}", spec.package.value),
            format!("kiln: rust {} --bin {bin} --target {}", spec.package.value, target.triple),
        );
        if !self.rust.iter().any(|b| b.id == build.id) {
            self.rust.push(build);
        }
        Some(Placed { entries: vec![entry], layer: Some(layer) })
    }
}

/// A placed node as a layering unit: its stable key, why it gets a layer, how volatile it is.
fn unit(content: &Content, placed: Placed) -> Option<Unit> {
    if placed.entries.is_empty() {
        return None;
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
    };
    let reason = super::layering::reason(&key);
    Some(Unit { key, name, created_by, reason, volatility, entries: placed.entries })
}

/// Nodes whose files differ by platform, and so get layers of their own.
fn is_per_platform(c: &Content) -> bool {
    match c {
        Content::Copy { src, .. } => has_placeholder(&src.value),
        Content::Rust(_) => true,
        Content::File { .. } => false,
    }
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
        user: spec.user.as_deref().map(user::normalise),
        user_from: UserSource::Recipe,
        workdir: spec.workdir.clone(),
        exposed_ports: spec.expose.clone(),
        labels: spec.labels.clone(),
    }
}

/// Sorts entries, adds missing parent directories and computes the layer id.
fn layer(unit: Unit, compression: Compression, epoch: u64) -> LayerPlan {
    layer_over(unit, compression, epoch, &BaseView::default())
}

/// Like [`layer`], for a layer above a base: a parent directory the base already has (a
/// directory or a symlink) is not written again, so the base keeps its modes, owners and links
/// (`/tmp` stays 1777, a home stays its owner's, `bin -> usr/bin` stays a link).
fn layer_over(unit: Unit, compression: Compression, epoch: u64, below: &BaseView) -> LayerPlan {
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
    let identity: Vec<Entry> = entries.iter().cloned().map(|e| Entry { source: None, from: None, ..e }).collect();
    let id = crate::digest::sha256_hex(&crate::canonical::to_vec(&(&compression, epoch, &identity)));
    LayerPlan { id, key, name, reason, volatility, created_by, entries, prebuilt: None }
}
