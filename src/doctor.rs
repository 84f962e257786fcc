//! `kiln doctor`: what each platform needs to build Rust binaries (and the C code of their
//! crates), C programs and Go programs, what is present, and the command that installs what
//! is missing.

use crate::oci::platform::Platform;
use crate::plan::facts::{Missing, Zig, c_zig_target, zig_target};
use crate::toolchain::{Isolation, rust};
use std::fmt::Write;
use std::path::Path;

pub struct Report {
    pub text: String,
    /// Everything every platform needs is present.
    pub ok: bool,
}

fn missing(text: &mut String, what: &str, m: &Missing) {
    let _ = writeln!(text, "missing  {what}{}\n         {}", m.message, m.help);
}

pub fn check(dir: &Path, cargo_home: &Path) -> Report {
    let mut text = String::new();
    let mut ok = true;
    let zig = crate::toolchain::zig::probe();
    match rust::Probe::detect(dir, cargo_home) {
        Ok(probe) => ok &= rust_platforms(&mut text, &probe, &zig),
        Err(m) => {
            ok = false;
            missing(&mut text, "", &m);
        }
    }
    // C programs (`c` nodes): zig's musl targets on every platform.
    for p in Platform::ALL {
        let to = c_zig_target(p);
        match &zig {
            Ok(z) => {
                let _ = writeln!(
                    text,
                    "ok       {p:<13} C programs: zig cc {} -target {to} ({})",
                    z.version,
                    z.path.display()
                );
            }
            Err(m) => {
                ok = false;
                missing(&mut text, &format!("{p:<13} C programs: "), m);
            }
        }
    }
    // Go programs (`go` nodes): one go command cross-compiles to every platform.
    let go = crate::toolchain::go::probe();
    for p in Platform::ALL {
        let arch = match p {
            Platform::LinuxAmd64 => "GOARCH=amd64",
            Platform::LinuxArm64 => "GOARCH=arm64",
            Platform::LinuxArmV7 => "GOARCH=arm GOARM=7",
        };
        match &go {
            Ok(g) => {
                let _ = writeln!(
                    text,
                    "ok       {p:<13} Go programs: {} {arch} CGO_ENABLED=0 ({})",
                    g.version,
                    g.path.display()
                );
            }
            Err(m) => {
                ok = false;
                missing(&mut text, &format!("{p:<13} Go programs: "), m);
            }
        }
    }
    Report { text, ok }
}

/// The Rust toolchain, and each platform's target, linker, strip and C compiler for crates;
/// whether all are present.
fn rust_platforms(text: &mut String, probe: &rust::Probe, zig: &Result<Zig, Missing>) -> bool {
    let _ = writeln!(text, "rust     {} ({})", probe.rustc_version, probe.sysroot.display());
    let _ = writeln!(text, "cargo    {}", probe.cargo_version);
    let network = match probe.isolation {
        Isolation::NetworkNamespace => "compiles run in a private network namespace (no network)",
        Isolation::UserNetworkNamespace => "compiles run in a private user and network namespace (no network)",
        Isolation::OfflineOnly => "namespaces unavailable: compiles run with --offline only",
    };
    let _ = writeln!(text, "network  {network}");
    let mut ok = true;
    for p in Platform::ALL {
        match rust::target(p, None, probe) {
            Ok(t) => {
                let _ =
                    writeln!(text, "ok       {p:<13} {}  linker {}  strip {}", t.triple, t.linker_desc, t.strip_desc);
                match (zig, t.triple.contains("-musl")) {
                    (_, false) => {
                        let _ = writeln!(text, "ok       {p:<13} C: {} (cc)", t.linker_desc);
                    }
                    (Ok(z), true) => {
                        let to = zig_target(&t.triple);
                        let _ = writeln!(
                            text,
                            "ok       {p:<13} C: zig cc {} -target {to} ({})",
                            z.version,
                            z.path.display()
                        );
                    }
                    (Err(m), true) => {
                        ok = false;
                        missing(text, &format!("{p:<13} C: "), m);
                    }
                }
            }
            Err(m) => {
                ok = false;
                missing(text, &format!("{p:<13} "), &m);
            }
        }
    }
    ok
}
