//! Recipe + file system → [`Plan`]. The only part of planning that reads files: it hashes every
//! source, expands directories and per-platform placeholders, and checks what the text alone
//! cannot (missing sources, two nodes writing the same path).

use crate::diag::codes::Code;
mod base;
pub(super) mod c;
mod copy;
pub(super) mod go;
mod layers;
mod needs;
pub(super) mod rust;
pub mod share;
mod user;

use self::layers::{layer_over, unit};
use super::layering::{NamedLayer, Unit, assign};
use super::*;
use crate::diag::Problem;
use crate::oci::platform::has_placeholder;
use crate::plan::facts::Facts;
use crate::recipe::{Base, Content, ImageSpec, Perms, Recipe};
use miette::SourceSpan;
pub use needs::needs;
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
    /// The toolchain facts gathered for [`rust_needs`].
    pub facts: Facts,
    /// Registry bases named by tag, as `kiln.lock` pins them (`host/repo:tag` → `sha256:…`).
    pub pinned_bases: BTreeMap<String, String>,
    /// The digests of files hashed before, by their metadata (none remembered by default).
    pub fingerprints: std::sync::Arc<crate::store::fingerprint::Fingerprints>,
}

/// Layers an image may have unless the recipe says otherwise (containerd's limit is 127).
pub const DEFAULT_LAYER_BUDGET: usize = 64;

/// The images to plan and the platforms of each, as the options select them.
pub(super) fn selected<'r>(recipe: &'r Recipe, opts: &PlanOptions) -> Vec<(&'r ImageSpec, Vec<Platform>)> {
    let mut out = Vec::new();
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
        out.push((spec, platforms));
    }
    out
}

/// Resolves a parsed recipe into a plan, or every problem found. Reads the files the recipe
/// names; spawns no process and touches no network (toolchain facts come in `opts.facts`).
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
        hashes: std::collections::HashMap::new(),
        fingerprints: &opts.fingerprints,
        reported: BTreeSet::new(),
        facts: &opts.facts,
        sources: BTreeMap::new(),
        rust: Vec::new(),
        c: Vec::new(),
        go: Vec::new(),
        c_inputs: BTreeMap::new(),
        epoch,
        debian: opts.debian.as_ref(),
        pinned_bases: &opts.pinned_bases,
        previous: opts.previous.as_ref(),
        named: &recipe.layers.named,
        budget: recipe.layers.budget.unwrap_or(DEFAULT_LAYER_BUDGET),
        sharing: share::Sharing::default(),
    };
    r.sharing = r.sharing(recipe, recipe.layers.share_min.unwrap_or(share::DEFAULT_SHARE_MIN));
    let mut images = Vec::new();
    for (spec, platforms) in selected(recipe, opts) {
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
        Ok(Plan {
            plan_format: PLAN_FORMAT,
            epoch,
            epoch_source,
            compression,
            debian,
            rust: r.rust,
            c: r.c,
            go: r.go,
            images,
        })
    } else {
        Err(r.problems)
    }
}

/// Files one content node contributes, before layering.
struct Placed {
    entries: Vec<Entry>,
    /// Name and history line of the node's own layer, for per-platform nodes.
    layer: Option<(String, String)>,
    /// The key of the shared layer these files go to, when other images hold them too.
    share: Option<String>,
}

impl Placed {
    fn shared(entries: Vec<Entry>) -> Placed {
        Placed { entries, layer: None, share: None }
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
    pinned_bases: &'a BTreeMap<String, String>,
    previous: Option<&'a BTreeMap<(String, Platform), Vec<String>>>,
    named: &'a [NamedLayer],
    budget: usize,
    /// Which files go to layers shared with other images.
    sharing: share::Sharing,
    problems: Vec<Problem>,
    /// The toolchain facts gathered before planning.
    facts: &'a Facts,
    /// Source hashes by workspace root.
    sources: BTreeMap<PathBuf, (usize, String)>,
    rust: Vec<RustBuild>,
    c: Vec<CBuild>,
    go: Vec<GoBuild>,
    /// What each `c` node reads (by the node's offset in the recipe), gathered once.
    c_inputs: BTreeMap<usize, Option<c::CInputs>>,
    /// Source hashes by path, so a file shared by platforms or images is read once.
    hashes: std::collections::HashMap<PathBuf, (String, u64)>,
    /// Digests remembered from earlier builds, by the files' metadata.
    fingerprints: &'a crate::store::fingerprint::Fingerprints,
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
    /// How compiles are cut off from the network here, as gathered before planning.
    fn isolation(&self) -> facts::Isolation {
        self.facts.isolation.unwrap_or(facts::Isolation::OfflineOnly)
    }

    fn once(&mut self, key: String, span: SourceSpan, p: Problem) {
        if self.reported.insert((key, span.offset())) {
            self.problems.push(p);
        }
    }

    fn hash(&mut self, path: &Path) -> std::io::Result<(String, u64)> {
        if let Some(h) = self.hashes.get(path) {
            return Ok(h.clone());
        }
        let h = self.fingerprints.sha256(path)?;
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
                self.once(rel.clone(), span, Problem::new(Code::PlanUnreadableSource, span, msg).label("named here"));
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
            Content::C(spec) => self.c(spec, platform),
            Content::Go(spec) => self.go(spec, platform),
            Content::File { dest, content, perms, .. } => {
                let bytes = content.as_bytes();
                Some(Placed::shared(vec![Entry {
                    path: dest.value.clone(),
                    kind: EntryKind::File,
                    mode: perms.mode.unwrap_or(0o644),
                    uid: perms.uid.unwrap_or(0),
                    gid: perms.gid.unwrap_or(0),
                    size: Some(bytes.len() as u64),
                    sha256: Some(crate::oci::digest::sha256_hex(bytes)),
                    source: None,
                    content: Some(content.clone()),
                    target: None,
                    build: None,
                    from: None,
                }]))
            }
            Content::Copy { src, dest, perms, exclude, .. } => {
                let node = copy::CopyNode { src, dest, perms: *perms, exclude };
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
        let mut shared: Vec<Option<Placed>> = spec
            .contents
            .iter()
            .map(|c| match is_per_platform(c) {
                true => None,
                false => self.place(c, platforms.first().copied().unwrap_or(Platform::LinuxAmd64)),
            })
            .collect();
        let mut out = Vec::new();
        for (n, &platform) in platforms.iter().enumerate() {
            let last = n + 1 == platforms.len();
            let mut placed: Vec<(usize, Placed)> = Vec::new();
            for (i, c) in spec.contents.iter().enumerate() {
                let p = match is_per_platform(c) {
                    true => self.place(c, platform),
                    // The last platform takes the entries; the others get a copy.
                    false if last => shared[i].take().map(|p| Placed::shared(p.entries)),
                    false => shared[i].as_ref().map(|p| Placed::shared(p.entries.clone())),
                };
                if let Some(p) = p {
                    placed.push((i, p));
                }
            }
            let mut placed = self.sharing.split(placed, &spec.contents);
            let mut config = config.clone();
            let (mut layers, view) = self.base_layers(spec, platform, &mut config, compression, epoch);
            self.follow_base_links(spec, &view, &mut placed);
            self.check_conflicts(spec, &placed);
            self.settle_user(spec, &view, &placed, &mut config);
            let mut units: Vec<Unit> = placed.into_iter().filter_map(|(i, p)| unit(&spec.contents[i], p)).collect();
            units.sort_by_key(share::below_own);
            let previous = self.previous.and_then(|m| m.get(&(spec.name.value.clone(), platform))).map(Vec::as_slice);
            layers.extend(
                assign(units, self.named, previous).into_iter().map(|u| layer_over(u, compression, epoch, &view)),
            );
            if layers.len() > self.budget {
                let p = Problem::new(Code::PlanLayerBudget, spec.name.span, format!("image `{}` needs {} layers for {platform}, over the budget of {}", spec.name.value, layers.len(), self.budget))
                    .label("too many layers")
                    .help("group paths with `layers { layer \"NAME\" { path \"/prefix/\" } }`, or raise `layers { budget N }` (containerd allows 127)");
                self.once(format!("budget {platform}"), spec.name.span, p);
            }
            out.push(PlatformPlan { platform, config, layers });
        }
        ImagePlan { name: spec.name.value.clone(), base, annotations, platforms: out }
    }
}

/// Nodes whose files differ by platform, and so get layers of their own.
fn is_per_platform(c: &Content) -> bool {
    match c {
        Content::Copy { src, .. } => has_placeholder(&src.value),
        Content::Rust(_) | Content::C(_) | Content::Go(_) => true,
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
