//! C programs: each source compiled by zig cc for the step's target in the recipe's
//! directory, with a dependency file that must name only files the plan hashed (or zig's own
//! headers), then linked statically and stripped in one more zig run.

use super::cache::{self, Compiled};
use crate::error::ToolchainError;
use crate::plan::{BuildStep, CBuild, Step};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Arguments only the link takes.
fn link_only(arg: &str) -> bool {
    arg == "-s" || arg == "-static" || arg.starts_with("-l")
}

/// The dependencies a make-style depfile lists (`out.o: a.c b.h \` …), escapes undone.
fn depfile(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some((_, deps)) = line.split_once(": ") else { continue };
        let mut cur = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(|n| *n == ' ' || *n == '#') => cur.push(chars.next().unwrap_or(' ')),
                '$' if chars.peek() == Some(&'$') => {
                    chars.next();
                    cur.push('$');
                }
                c if c.is_whitespace() => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Where one C step runs here.
pub struct CExec<'a> {
    /// The recipe's directory, resolved.
    pub root: PathBuf,
    pub zig: &'a Path,
    pub cache: PathBuf,
}

impl CExec<'_> {
    fn command(&self, b: &CBuild, epoch: u64) -> Command {
        let zig_cache = self.cache.join("zig/cache");
        let mut cmd = b.network.command(self.zig);
        cmd.env_clear()
            .current_dir(&self.root)
            .env("PATH", "/usr/bin:/bin")
            .env("ZIG_GLOBAL_CACHE_DIR", &zig_cache)
            .env("ZIG_LOCAL_CACHE_DIR", &zig_cache)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .args(["cc", "-target", &b.target]);
        cmd
    }

    /// Every file the dependency file names is one the plan hashed, or one of zig's own.
    fn check_deps(
        &self,
        b: &CBuild,
        src: &str,
        deps: &str,
        declared: &BTreeSet<PathBuf>,
    ) -> Result<(), ToolchainError> {
        let text = std::fs::read_to_string(deps).map_err(ToolchainError::io("read", deps))?;
        let zig_home = self.zig.parent().map(Path::to_path_buf).unwrap_or_default();
        for dep in depfile(&text) {
            let path = self.root.join(&dep);
            let real = std::fs::canonicalize(&path).unwrap_or(path);
            if declared.contains(&real) || real.starts_with(&zig_home) {
                continue;
            }
            let inside = real.starts_with(&self.root);
            let help = match inside {
                true => "name its directory with `include \"DIR/\"` (or keep it beside a source) so the plan hashes it"
                    .to_string(),
                false => {
                    "a C program may read only files inside the recipe's directory and zig's own headers".to_string()
                }
            };
            let file = match inside {
                true => real.strip_prefix(&self.root).unwrap_or(&real).display().to_string(),
                false => real.display().to_string(),
            };
            return Err(ToolchainError::UndeclaredInput {
                what: format!("compiling {src} of {}", b.describe()),
                file,
                help,
            });
        }
        Ok(())
    }
}

fn fill(arg: &str, root: &Path) -> String {
    arg.replace("${root}", &root.to_string_lossy())
}

/// Runs one zig command; its stderr becomes the error, naming `what`.
fn run(mut cmd: Command, what: String) -> Result<(), ToolchainError> {
    let out = cmd.output().map_err(ToolchainError::io("run", Path::new("zig")))?;
    if !out.status.success() {
        let output = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ToolchainError::Compile { tool: "zig cc", what, output });
    }
    Ok(())
}

/// Compiles, links, checks and caches one C program.
pub fn compile(b: &CBuild, x: &CExec<'_>, epoch: u64) -> Result<Compiled, ToolchainError> {
    let step = Step::C(b);
    let staging = cache::staging(&x.cache, step)?;
    let real_cache = std::fs::canonicalize(&x.cache).ok();
    let declared: BTreeSet<PathBuf> = crate::plan::c_readable(&x.root, real_cache.as_deref(), &b.sources, &b.include)
        .iter()
        .map(|rel| x.root.join(rel))
        .collect();
    let mut objects = Vec::new();
    for (i, src) in b.sources.iter().enumerate() {
        let obj = staging.path().join(format!("{i}.o"));
        let deps = staging.path().join(format!("{i}.d"));
        let mut cmd = x.command(b, epoch);
        cmd.args(b.args.iter().filter(|a| !link_only(a)).map(|a| fill(a, &x.root)));
        for dir in &b.include {
            cmd.arg(format!("-I{dir}"));
        }
        cmd.args(["-c", src, "-o"]).arg(&obj).args(["-MD", "-MF"]).arg(&deps);
        run(cmd, format!("{src} of {}", b.describe()))?;
        x.check_deps(b, src, &deps.to_string_lossy(), &declared)?;
        objects.push(obj);
    }
    let out = staging.path().join(&b.name);
    let mut cmd = x.command(b, epoch);
    cmd.args(b.args.iter().filter(|a| !a.starts_with("-D")).map(|a| fill(a, &x.root)));
    cmd.args(&objects).arg("-o").arg(&out);
    run(cmd, format!("{} (linking)", b.describe()))?;
    for o in objects.iter().flat_map(|o| [o.clone(), o.with_extension("d")]) {
        let _ = std::fs::remove_file(o);
    }
    let size = std::fs::metadata(&out).map_err(ToolchainError::io("read", &out))?.len();
    // zig links with `-s`: the binary is stripped as linked.
    cache::store(&x.cache, step, staging, size, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_depfile_lists_its_dependencies_with_escapes_undone() {
        let text = "/tmp/x/0.o: src/main.c include/a\\ b.h \\\n  /zig/lib/libc/include/stdio.h cost$$.h\n";
        assert_eq!(super::depfile(text), ["src/main.c", "include/a b.h", "/zig/lib/libc/include/stdio.h", "cost$.h"]);
    }
}
