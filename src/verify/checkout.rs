//! A fresh checkout of the recipe's directory for a rebuild: its files copied as a clone
//! would write them (contents and the executable bit; modes from the umask in force), in
//! name order or in reverse, leaving out what a clone does not have: `.git`, kiln's own
//! leftovers, cargo's `target/` directories and OCI layouts that are output rather than a
//! base. A mount through disorderfs shows the copy with every directory's entries reversed.

use crate::error::VerifyError;
use crate::ignore::is_kiln_own;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The recipe's directory, resolved.
pub(crate) fn recipe_root(recipe: &Path) -> Result<PathBuf, VerifyError> {
    let dir = match recipe.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::canonicalize(dir).map_err(VerifyError::io("resolve", dir))
}

/// Whether the walk leaves `path` out (`rel` relative to the recipe's directory).
fn left_out(path: &Path, rel: &str, name: &str, is_dir: bool, needed: &[String]) -> bool {
    if is_kiln_own(name) {
        return true;
    }
    if !is_dir {
        return false;
    }
    let cargo_output = name == "target" && path.parent().is_some_and(|p| p.join("Cargo.toml").is_file());
    let layout = path.join("oci-layout").is_file() && !needed.iter().any(|n| n.trim_end_matches('/') == rel);
    cargo_output || layout
}

fn chmod(path: &Path, mode: u32) -> Result<(), VerifyError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(VerifyError::io("chmod", path))
}

/// Copies the tree `from` into the new directory `to`, in name order or in reverse, with the
/// modes a checkout under `umask` gives.
pub(crate) fn copy_tree(
    from: &Path,
    to: &Path,
    reverse: bool,
    umask: u32,
    needed: &[String],
) -> Result<(), VerifyError> {
    std::fs::create_dir_all(to).map_err(VerifyError::io("create", to))?;
    chmod(to, 0o777 & !umask)?;
    let walker = walkdir::WalkDir::new(from).min_depth(1).sort_by(move |a, b| {
        let o = a.file_name().cmp(b.file_name());
        if reverse { o.reverse() } else { o }
    });
    let mut it = walker.into_iter();
    while let Some(item) = it.next() {
        let item = item.map_err(|e| VerifyError::io("read", from)(e.into()))?;
        let rel = item.path().strip_prefix(from).unwrap_or(item.path());
        let rel_s = rel.to_string_lossy();
        let name = item.file_name().to_string_lossy();
        let t = item.file_type();
        if left_out(item.path(), &rel_s, &name, t.is_dir(), needed) {
            if t.is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let dest = to.join(rel);
        if t.is_dir() {
            std::fs::create_dir(&dest).map_err(VerifyError::io("create", &dest))?;
            chmod(&dest, 0o777 & !umask)?;
        } else if t.is_symlink() {
            let target = std::fs::read_link(item.path()).map_err(VerifyError::io("read", item.path()))?;
            std::os::unix::fs::symlink(&target, &dest).map_err(VerifyError::io("create", &dest))?;
        } else if t.is_file() {
            copy_file(item.path(), &dest, umask)?;
        }
    }
    Ok(())
}

/// A file as git checks it out: its bytes, and 0777 or 0666 less the umask, as the file
/// had an executable bit or not.
fn copy_file(from: &Path, to: &Path, umask: u32) -> Result<(), VerifyError> {
    let mode = std::fs::metadata(from).map_err(VerifyError::io("read", from))?.permissions().mode();
    let mut src = std::fs::File::open(from).map_err(VerifyError::io("read", from))?;
    let mut dst =
        std::fs::OpenOptions::new().write(true).create_new(true).open(to).map_err(VerifyError::io("create", to))?;
    std::io::copy(&mut src, &mut dst).map_err(VerifyError::io("write", to))?;
    let mode = if mode & 0o111 != 0 { 0o777 } else { 0o666 };
    dst.set_permissions(std::fs::Permissions::from_mode(mode & !umask)).map_err(VerifyError::io("chmod", to))
}

/// A directory shown through disorderfs with its entries reversed, unmounted when dropped.
pub(crate) struct Mount {
    point: PathBuf,
    fusermount: PathBuf,
}

impl Mount {
    /// Mounts `dir` at `point` with `(disorderfs, fusermount)`.
    pub(crate) fn reversed(tools: &(PathBuf, PathBuf), dir: &Path, point: &Path) -> Result<Mount, VerifyError> {
        std::fs::create_dir_all(point).map_err(VerifyError::io("create", point))?;
        let out = Command::new(&tools.0)
            .args(["--reverse-dirents=yes", "--shuffle-dirents=no", "--multi-user=no"])
            .arg(dir)
            .arg(point)
            .output()
            .map_err(VerifyError::io("run", &tools.0))?;
        if !out.status.success() {
            return Err(VerifyError::Rebuild {
                side: "second",
                status: format!("disorderfs {}", out.status),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Mount { point: point.to_path_buf(), fusermount: tools.1.clone() })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.point
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new(&self.fusermount).arg("-u").arg(&self.point).output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_leaves_out_git_cargo_output_and_layouts_but_keeps_a_base_layout() {
        let src = tempfile::tempdir().unwrap();
        let w = |rel: &str| {
            let p = src.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, rel).unwrap();
        };
        for f in ["kiln.kdl", "Cargo.toml", "src/main.rs", ".git/HEAD", "target/x", "out/oci-layout", "base/oci-layout"]
        {
            w(f);
        }
        std::fs::set_permissions(src.path().join("src/main.rs"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let to = dst.path().join("copy");
        copy_tree(src.path(), &to, true, 0o077, &["base".to_string()]).unwrap();
        assert!(
            to.join("kiln.kdl").is_file() && to.join("src/main.rs").is_file() && to.join("base/oci-layout").is_file()
        );
        for gone in [".git", "target", "out"] {
            assert!(!to.join(gone).exists(), "{gone} was copied");
        }
        let mode = |rel: &str| std::fs::metadata(to.join(rel)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("src/main.rs"), 0o700, "the executable bit is kept, the rest follows the umask");
        assert_eq!(mode("kiln.kdl"), 0o600);
        assert_eq!(mode("src"), 0o700);
    }
}
