//! The `c` node: its source patterns expanded (inside the recipe's directory only), every file
//! the compile may read hashed (sources, the include directories, the files beside each
//! source), and one zig build per platform recorded with its full argument list.

use super::rust::binary_entry;
use super::{Placed, Resolver};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::ignore::is_kiln_own;
use crate::oci::platform::Platform;
use crate::plan::CBuild;
use crate::plan::facts::{Missing, c_zig_target};
use crate::recipe::{CSpec, Spanned};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use miette::SourceSpan;
use std::path::{Path, PathBuf};

/// zig's CPU for linux/arm/v7: ARMv7-A with VFPv3-D16 and Thumb-2, without NEON, as Rust's
/// armv7 targets assume.
pub(crate) const ARMV7_CPU: &str = "-mcpu=generic+v7a+vfp3d16+thumb2-neon-d32";

/// Sources' paths as the compiler records them (`__FILE__`, debug info): the recipe's
/// directory is `/kiln/src`.
pub(crate) const PREFIX_MAP: &str = "-ffile-prefix-map=${root}=/kiln/src";

/// What a `c` node reads, the same for every platform: gathered once per node.
#[derive(Debug, Clone)]
pub(super) struct CInputs {
    sources: Vec<String>,
    include: Vec<String>,
    /// How many files the compile may read, and their hash.
    files: usize,
    sha256: String,
}

fn globs(patterns: &[Spanned<String>]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // The recipe stage checked each pattern already.
        if let Ok(g) = GlobBuilder::new(&p.value).literal_separator(true).build() {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// The directory a pattern's matches are all under: its components before the first with a
/// glob character.
fn literal_prefix(pattern: &str) -> (String, bool) {
    let meta = |c: &str| c.contains(['*', '?', '[', '{']);
    let parts: Vec<&str> = pattern.split('/').collect();
    match parts.iter().position(|c| meta(c)) {
        None => (pattern.to_string(), false),
        Some(i) => (parts[..i].join("/"), true),
    }
}

/// Every regular file under `dir` (resolved), hidden entries, kiln's own output and caches
/// left out; `deep` walks subdirectories too.
fn files_under(dir: &Path, deep: bool, cache: Option<&Path>) -> Vec<PathBuf> {
    let walk = walkdir::WalkDir::new(dir).max_depth(if deep { usize::MAX } else { 1 }).sort_by_file_name();
    walk.into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            let own = e.depth() > 0 && (name.starts_with('.') || is_kiln_own(&name));
            let layout = e.file_type().is_dir() && e.path().join("oci-layout").is_file();
            !(own || layout || cache == Some(e.path()))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// Every file a C compile may read, relative to the recipe's directory `real_root` (resolved):
/// the sources, every file under the include directories, every file beside a source. The
/// plan hashes them; the toolchain refuses a compile that read anything else of the project.
pub(crate) fn c_readable(
    real_root: &Path,
    cache: Option<&Path>,
    sources: &[String],
    include: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = sources.to_vec();
    for dir in include {
        out.extend(files_under(&real_root.join(dir), true, cache).iter().map(|f| rel_to(real_root, f)));
    }
    for s in sources {
        let parent = real_root.join(s).parent().map(Path::to_path_buf).unwrap_or_default();
        out.extend(files_under(&parent, false, cache).iter().map(|f| rel_to(real_root, f)));
    }
    out.sort();
    out.dedup();
    out
}

/// The number and hash of the files a C compile may read ([`c_readable`]).
pub(crate) fn c_inputs_hash(
    real_root: &Path,
    cache: Option<&Path>,
    sources: &[String],
    include: &[String],
    fp: &crate::store::fingerprint::Fingerprints,
) -> std::io::Result<(usize, String)> {
    let files = c_readable(real_root, cache, sources, include);
    let mut listing = String::new();
    for rel in &files {
        let (sha, _) = fp.sha256(&real_root.join(rel))?;
        listing.push_str(&format!("{rel} {sha}\n"));
    }
    Ok((files.len(), crate::oci::digest::sha256_hex(listing.as_bytes())))
}

fn rel_to(root: &Path, real: &Path) -> String {
    real.strip_prefix(root).unwrap_or(real).to_string_lossy().into_owned()
}

impl Resolver<'_> {
    /// `rel` with every symlink followed, when it exists inside the recipe's directory.
    pub(super) fn inside(&mut self, rel: &str, span: SourceSpan, what: &str) -> Option<PathBuf> {
        let real = match std::fs::canonicalize(self.root.join(rel)) {
            Ok(r) => r,
            Err(e) => {
                let p = Problem::new(Code::PlanMissingSource, span, format!("{what} `{rel}`: {e}")).label("named here");
                self.once(format!("missing:{rel}"), span, p);
                return None;
            }
        };
        if !real.starts_with(&self.real_root) {
            let p = Problem::new(
                Code::RecipeSourceOutside,
                span,
                format!("{what} `{rel}` resolves to {}, outside the recipe's directory", real.display()),
            )
            .label("leads outside the recipe's directory")
            .help("everything a compile reads must be inside the recipe's directory");
            self.once(format!("outside:{rel}"), span, p);
            return None;
        }
        Some(real)
    }

    /// The recipe-relative form of a resolved path inside the recipe's directory.
    fn rel_of(&self, real: &Path) -> String {
        rel_to(&self.real_root, real)
    }

    /// The files one `sources` pattern names, sorted.
    fn expand(&mut self, pattern: &Spanned<String>, exclude: &GlobSet) -> Vec<PathBuf> {
        let (prefix, is_glob) = literal_prefix(&pattern.value);
        if !is_glob {
            let found = self.inside(&prefix, pattern.span, "source");
            if found.as_ref().is_some_and(|f| !f.is_file()) {
                let p = Problem::new(Code::PlanNoSources, pattern.span, format!("source `{prefix}` is not a file"))
                    .label("a directory, or not a regular file")
                    .help("name the files, or a pattern such as \"src/*.c\"");
                self.once(format!("notfile:{prefix}"), pattern.span, p);
                return Vec::new();
            }
            return found.into_iter().collect();
        }
        let dir = if prefix.is_empty() {
            Some(self.real_root.clone())
        } else {
            self.inside(&prefix, pattern.span, "source directory")
        };
        let Some(dir) = dir else { return Vec::new() };
        let one = globs(std::slice::from_ref(pattern));
        let mut out = Vec::new();
        for f in files_under(&dir, true, self.real_cache.as_deref()) {
            let rel = format!(
                "{prefix}{}{}",
                if prefix.is_empty() { "" } else { "/" },
                f.strip_prefix(&dir).unwrap_or(&f).to_string_lossy()
            );
            if one.is_match(&rel) && !exclude.is_match(&rel) {
                out.push(f);
            }
        }
        out
    }

    /// The node's sources, include directories and every file its compile may read.
    fn c_inputs(&mut self, spec: &CSpec) -> Option<CInputs> {
        let exclude = globs(&spec.exclude);
        let mut sources: Vec<String> = Vec::new();
        let mut ok = true;
        for pattern in &spec.sources {
            let reported = self.problems.len();
            let found = self.expand(pattern, &exclude);
            ok &= !found.is_empty();
            if found.is_empty() && self.problems.len() == reported {
                let p = Problem::new(Code::PlanNoSources, pattern.span, format!("`{}` matches no file", pattern.value))
                    .label("no source here")
                    .help("patterns are relative to kiln.kdl; `*` stays within a directory, `**` crosses them");
                self.once(format!("nosources:{}", pattern.value), pattern.span, p);
            }
            for f in found {
                let rel = self.rel_of(&f);
                if !sources.contains(&rel) {
                    sources.push(rel);
                }
            }
        }
        let mut include = Vec::new();
        for dir in &spec.include {
            match self.inside(&dir.value, dir.span, "include directory") {
                Some(real) => include.push(self.rel_of(&real)),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let hashed = c_inputs_hash(&self.real_root, self.real_cache.as_deref(), &sources, &include, self.fingerprints);
        let (files, sha256) = match hashed {
            Ok(h) => h,
            Err(e) => {
                let p = Problem::new(
                    Code::PlanUnreadableSource,
                    spec.name.span,
                    format!("cannot read the files of `c \"{}\"`: {e}", spec.name.value),
                )
                .label("read by this node")
                .help("check the files' permissions");
                self.once(format!("unreadable:{}", spec.name.value), spec.name.span, p);
                return None;
            }
        };
        Some(CInputs { sources, include, files, sha256 })
    }

    /// A `c` node for one platform.
    pub(super) fn c(&mut self, spec: &CSpec, platform: Platform) -> Option<Placed> {
        let key = spec.span.offset();
        let inputs = match self.c_inputs.get(&key) {
            Some(i) => i.clone(),
            None => {
                let i = self.c_inputs(spec);
                self.c_inputs.insert(key, i.clone());
                i
            }
        }?;
        let zig = self.facts.zig().map_err(|m: Missing| {
            let p = Problem::new(m.code, spec.name.span, m.message.clone()).label("needed here").help(m.help);
            self.once(format!("{}", m.code), spec.name.span, p);
        });
        let zig = zig.ok()?;
        let mut args = vec!["-static".to_string(), "-g0".into(), "-s".into()];
        if platform == Platform::LinuxArmV7 {
            args.push(ARMV7_CPU.into());
        }
        if !spec.flags.iter().any(|f| f.starts_with("-O")) {
            args.push("-O2".into());
        }
        args.push(PREFIX_MAP.into());
        args.extend(spec.define.iter().map(|d| format!("-D{d}")));
        args.extend(spec.flags.iter().cloned());
        args.extend(spec.libs.iter().map(|l| format!("-l{l}")));
        let mut build = CBuild {
            id: String::new(),
            name: spec.name.value.clone(),
            platform,
            target: c_zig_target(platform).to_string(),
            compiler: format!("zig cc {} (sha256 {})", zig.version, zig.sha256),
            sources: inputs.sources,
            include: inputs.include,
            args,
            input_files: inputs.files,
            inputs_sha256: inputs.sha256,
            network: self.isolation(),
        };
        build.id = crate::plan::steps::seal(&build, self.epoch);
        let dest =
            spec.dest.as_ref().map(|d| d.value.clone()).unwrap_or_else(|| format!("/usr/local/bin/{}", build.name));
        let layer = (format!("c {}", build.name), format!("kiln: c {} -target {}", build.name, build.target));
        let entry = binary_entry(dest, build.id.clone());
        if !self.c.iter().any(|b| b.id == build.id) {
            self.c.push(build);
        }
        Some(Placed { entries: vec![entry], layer: Some(layer), share: None })
    }
}
