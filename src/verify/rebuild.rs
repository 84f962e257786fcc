//! The rebuilds `kiln verify` compares: the recipe's directory checked out afresh (as a clone
//! would be) into a new directory, then built by the kiln executable in a process of its own,
//! with an empty cache, under conditions that differ from one build to the other: the
//! directory and working directory, umask, time zone, locale, `HOME`, `TMPDIR`, the time it
//! runs at and the order directories list their entries in (with disorderfs). A build that
//! any of these reach is not reproducible.

use crate::error::VerifyError;
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One condition the two builds differ in.
#[derive(Debug, Clone, Serialize)]
pub struct Variation {
    pub what: String,
    pub first: String,
    pub second: String,
}

/// Which of the two builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// As the recipe is normally built.
    First,
    /// Everything that can be varied, varied.
    Second,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::First => "first",
            Side::Second => "second",
        }
    }
}

/// What a rebuild needs from the caller: the kiln executable, the recipe, what to build,
/// disorderfs and fusermount where installed, and the environment to
/// keep (cargo's and rustup's homes, which `HOME` no longer leads to).
pub struct Rebuilder<'a> {
    pub kiln: &'a Path,
    /// The recipe file.
    pub recipe: &'a Path,
    /// `--platform` and `--image` arguments for the builds.
    pub select: Vec<String>,
    /// Directories in the recipe's directory the builds need although they look like output
    /// (OCI layouts a base is taken from), relative to it.
    pub layouts_needed: Vec<String>,
    pub disorderfs: Option<(PathBuf, PathBuf)>,
    pub keep_env: Vec<(String, OsString)>,
    /// Where both builds happen; emptied by the caller.
    pub work: &'a Path,
    /// An absolute path to write the second build's layout to, instead of `work`.
    pub keep: Option<PathBuf>,
}

/// The conditions of one side.
struct Conditions {
    dir: PathBuf,
    umask: u32,
    tz: &'static str,
    lang: &'static str,
    reverse: bool,
}

fn conditions(work: &Path, side: Side, name: &str) -> Conditions {
    match side {
        Side::First => {
            Conditions { dir: work.join("a").join(name), umask: 0o022, tz: "UTC", lang: "C.UTF-8", reverse: false }
        }
        Side::Second => Conditions {
            dir: work.join("b/elsewhere/a-longer-path").join(format!("{name}-rebuilt")),
            umask: 0o077,
            tz: "Pacific/Kiritimati",
            lang: "tr_TR.UTF-8",
            reverse: true,
        },
    }
}

/// What the builds differ in, as the report lists it.
pub fn variations(r: &Rebuilder<'_>) -> (Vec<Variation>, Vec<String>) {
    let name = recipe_name(r.recipe);
    let (a, b) = (conditions(r.work, Side::First, &name), conditions(r.work, Side::Second, &name));
    let v = |what: &str, first: String, second: String| Variation { what: what.into(), first, second };
    let mut out = vec![
        v("directory", a.dir.display().to_string(), b.dir.display().to_string()),
        v(
            "working directory",
            "the recipe's directory".into(),
            "another directory (the recipe named by its full path)".into(),
        ),
        v("umask", format!("{:04o}", a.umask), format!("{:04o} (the sources checked out and built under it)", b.umask)),
        v("TZ", a.tz.into(), b.tz.into()),
        v("locale (LANG, LC_ALL)", a.lang.into(), b.lang.into()),
        v("HOME and TMPDIR", "directories of the first build".into(), "other directories".into()),
        v("kiln cache", "empty".into(), "empty, another directory".into()),
    ];
    let mut not = vec!["user: both builds run as the user running kiln verify".to_string()];
    out.push(v("clock", "the time of the first build".into(), "later, by the first build's length".into()));
    not.push("clock: not shifted further (libfaketime stalls rustc)".into());
    let order = "directories created in name order";
    match &r.disorderfs {
        Some(_) => out.push(v(
            "file-system order",
            order.into(),
            "created in reverse order, read through disorderfs with entries reversed".into(),
        )),
        None => {
            out.push(v("file-system order", order.into(), "created in reverse order".into()));
            not.push("directory listing order: disorderfs is not installed".into());
        }
    }
    (out, not)
}

fn recipe_name(recipe: &Path) -> String {
    let dir = recipe
        .parent()
        .and_then(|p| std::fs::canonicalize(if p.as_os_str().is_empty() { Path::new(".") } else { p }).ok());
    dir.and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_else(|| "recipe".into())
}

/// Builds the recipe as `side` into `<work>/<side>/out`, which it returns; with
/// `compression`, compressed as that identity says instead of as the recipe does.
pub fn build(r: &Rebuilder<'_>, side: Side, compression: Option<&str>) -> Result<PathBuf, VerifyError> {
    let name = recipe_name(r.recipe);
    let c = conditions(r.work, side, &name);
    let root = super::checkout::recipe_root(r.recipe)?;
    let base = r.work.join(side.name());
    let (home, tmp, cache) = (base.join("home"), base.join("tmp"), base.join("cache"));
    let out = match (&r.keep, side) {
        (Some(keep), Side::Second) => keep.clone(),
        _ => base.join("out"),
    };
    for d in [&home, &tmp] {
        std::fs::create_dir_all(d).map_err(VerifyError::io("create", d))?;
    }
    super::checkout::copy_tree(&root, &c.dir, c.reverse, c.umask, &r.layouts_needed)?;
    let file = r.recipe.file_name().map(PathBuf::from).unwrap_or_else(|| "kiln.kdl".into());
    let mount = match (&r.disorderfs, c.reverse) {
        (Some(tools), true) => Some(super::checkout::Mount::reversed(tools, &c.dir, &base.join("mnt"))?),
        _ => None,
    };
    let dir = mount.as_ref().map_or(c.dir.clone(), |m| m.path().to_path_buf());
    // The umask is set in a shell that then becomes kiln: this process's own stays as it is.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(format!("umask {:04o} && exec \"$@\"", c.umask)).arg("sh");
    cmd.arg(r.kiln).arg("build").arg("-q").arg("--out").arg(&out);
    match side {
        Side::First => cmd.current_dir(&dir).arg("-f").arg(&file),
        Side::Second => cmd.current_dir(&home).arg("-f").arg(dir.join(&file)),
    };
    cmd.args(&r.select);
    if let Some(c) = compression {
        cmd.arg("--compression").arg(c);
    }
    cmd.envs(r.keep_env.iter().map(|(k, v)| (k, v)))
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("TZ", c.tz)
        .env("LANG", c.lang)
        .env("LC_ALL", c.lang)
        .env("KILN_CACHE_DIR", &cache)
        .env_remove("XDG_CACHE_HOME");
    let output = cmd.output().map_err(VerifyError::io("run", r.kiln));
    drop(mount);
    let output = output?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        return Err(VerifyError::Rebuild {
            side: side.name(),
            status: output.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(out)
}
