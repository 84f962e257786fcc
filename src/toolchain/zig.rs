//! zig, kiln's C compiler for the musl targets: found on PATH (`zig-0.17.0`, as
//! `scripts/install-deps` installs it, else `zig` of that version), and the small wrappers
//! that cargo's build scripts run as `CC_<triple>` and `AR_<triple>`.

use super::which;
use crate::diag::codes::Code;
use crate::plan::facts::{Missing, ZIG_VERSION, Zig};
use std::path::{Path, PathBuf};

/// Finds the pinned zig, and hashes it.
pub fn probe() -> Result<Zig, Missing> {
    let missing = |message: String| Missing {
        code: Code::ToolchainMissingZig,
        message,
        help: format!(
            "install zig {ZIG_VERSION} from PyPI's `ziglang` as `zig-{ZIG_VERSION}` on PATH: `scripts/install-deps build` does"
        ),
    };
    let pinned = format!("zig-{ZIG_VERSION}");
    let Some(found) = which(&pinned).or_else(|| which("zig")) else {
        return Err(missing(format!(
            "no zig is installed (kiln compiles C for the musl targets with zig {ZIG_VERSION})"
        )));
    };
    let path = std::fs::canonicalize(&found).unwrap_or(found);
    let version = super::first_line(&path, &["version"]).unwrap_or_default();
    if version != ZIG_VERSION {
        return Err(missing(format!(
            "{} is zig {version:?}, not the zig {ZIG_VERSION} kiln compiles C with",
            path.display()
        )));
    }
    let file = std::fs::File::open(&path).map_err(|e| missing(format!("cannot read {}: {e}", path.display())))?;
    let (sha256, _) =
        crate::oci::digest::sha256_reader(file).map_err(|e| missing(format!("cannot read {}: {e}", path.display())))?;
    Ok(Zig { path, version, sha256 })
}

/// The `cc` and `ar` wrappers for `target` (zig's name, `x86_64-linux-musl`), written under
/// `dir` once: `cc` drops the `--target=<rust triple>` that cc-rs passes (zig takes its own
/// `-target`), `ar` is zig's.
pub fn wrappers(zig: &Path, target: &str, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    // Single-quoted for sh: a `'` in the path closes the quote, is escaped, and reopens it.
    let zig = zig.to_string_lossy().replace('\'', r"'\''");
    let cc = format!(
        "#!/bin/sh\n# zig cc for {target}, as cargo's build scripts run it (written by kiln)\n\
         for a do shift; case \"$a\" in --target=*) ;; *) set -- \"$@\" \"$a\" ;; esac; done\n\
         exec '{zig}' cc -target {target} \"$@\"\n"
    );
    let ar = format!("#!/bin/sh\n# zig ar (written by kiln)\nexec '{zig}' ar \"$@\"\n");
    Ok((script(dir, &format!("{target}-cc"), &cc)?, script(dir, &format!("{target}-ar"), &ar)?))
}

/// Writes an executable script named by its contents' hash, so a run never rewrites a
/// script another run may be executing.
fn script(dir: &Path, name: &str, body: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let hash = crate::oci::digest::sha256_hex(body.as_bytes());
    let dir = dir.join(&hash[..16]);
    let path = dir.join(name);
    if std::fs::read_to_string(&path).is_ok_and(|b| b == body) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(body.as_bytes())?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_cc_wrapper_drops_the_rust_target_and_survives_a_quote_in_zigs_path() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("it's here");
        std::fs::create_dir_all(&odd).unwrap();
        let zig = odd.join("zig");
        std::fs::write(&zig, "#!/bin/sh\necho \"$@\"\n").unwrap();
        std::fs::set_permissions(&zig, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (cc, ar) = super::wrappers(&zig, "x86_64-linux-musl", &dir.path().join("w")).unwrap();
        let run = |p: &std::path::Path, args: &[&str]| {
            let o = std::process::Command::new(p).args(args).output().unwrap();
            String::from_utf8(o.stdout).unwrap()
        };
        assert_eq!(
            run(&cc, &["--target=x86_64-unknown-linux-musl", "-c", "a b.c", "-O2"]),
            "cc -target x86_64-linux-musl -c a b.c -O2\n"
        );
        assert_eq!(run(&ar, &["crs", "lib.a", "x.o"]), "ar crs lib.a x.o\n");
        // Written once: the same wrappers again are the same files.
        assert_eq!(super::wrappers(&zig, "x86_64-linux-musl", &dir.path().join("w")).unwrap(), (cc, ar));
    }
}
