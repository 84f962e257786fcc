//! `kiln doctor`: what each platform needs to build Rust binaries (and the C code of their
//! crates), what is present, and the command that installs what is missing.

use crate::oci::platform::Platform;
use crate::toolchain::{Isolation, rust};
use std::fmt::Write;
use std::path::Path;

pub struct Report {
    pub text: String,
    /// Everything every platform needs is present.
    pub ok: bool,
}

pub fn check(dir: &Path, cargo_home: &Path) -> Report {
    let mut text = String::new();
    let probe = match rust::Probe::detect(dir, cargo_home) {
        Ok(p) => p,
        Err(m) => {
            let _ = writeln!(text, "missing  {}\n         {}", m.message, m.help);
            return Report { text, ok: false };
        }
    };
    let _ = writeln!(text, "rust     {} ({})", probe.rustc_version, probe.sysroot.display());
    let _ = writeln!(text, "cargo    {}", probe.cargo_version);
    let network = match probe.isolation {
        Isolation::NetworkNamespace => "compiles run in a private network namespace (no network)",
        Isolation::UserNetworkNamespace => "compiles run in a private user and network namespace (no network)",
        Isolation::OfflineOnly => "namespaces unavailable: compiles run with --offline only",
    };
    let _ = writeln!(text, "network  {network}");
    let mut ok = true;
    let zig = crate::toolchain::zig::probe();
    for p in Platform::ALL {
        match rust::target(p, None, &probe) {
            Ok(t) => {
                let _ =
                    writeln!(text, "ok       {p:<13} {}  linker {}  strip {}", t.triple, t.linker_desc, t.strip_desc);
                match (&zig, t.triple.contains("-musl")) {
                    (_, false) => {
                        let _ = writeln!(text, "ok       {p:<13} C: {} (cc)", t.linker_desc);
                    }
                    (Ok(z), true) => {
                        let to = crate::plan::facts::zig_target(&t.triple);
                        let _ = writeln!(
                            text,
                            "ok       {p:<13} C: zig cc {} -target {to} ({})",
                            z.version,
                            z.path.display()
                        );
                    }
                    (Err(m), true) => {
                        ok = false;
                        let _ = writeln!(
                            text,
                            "missing  {p:<13} C: {}
         {}",
                            m.message, m.help
                        );
                    }
                }
            }
            Err(m) => {
                ok = false;
                let _ = writeln!(text, "missing  {p:<13} {}\n         {}", m.message, m.help);
            }
        }
    }
    Report { text, ok }
}
