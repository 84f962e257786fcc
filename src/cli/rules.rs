//! The house rule the command line keeps for the library: only `src/cli/` (and `main.rs`)
//! prints or reads the environment and the working directory.

use std::path::{Path, PathBuf};

/// What only the command line may do: print, and read the environment or the working directory.
const CLI_ONLY: &[&str] = &[
    "print!(",
    "println!(",
    "eprint!(",
    "eprintln!(",
    "dbg!(",
    "io::stdout(",
    "io::stderr(",
    "env::var(",
    "env::var_os(",
    "env::vars(",
    "env::args",
    "env::current_dir(",
    "env::temp_dir(",
];

/// Reads the library still makes, each for a reason: finding a host program (a compiler,
/// `strip`, `unshare`, `gpgv`) looks on PATH as a shell would, and the Debian index names
/// the temporary directory tempfile picked in its error.
const KNOWN: &[(&str, &str)] = &[("host.rs", "env::var_os(\"PATH\")"), ("inputs/debian/index.rs", "env::temp_dir()")];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = e.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_cli_prints_or_reads_the_environment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "main.rs" || rel.starts_with("cli/") {
            continue;
        }
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let known = KNOWN.iter().any(|(f, what)| *f == rel && code.contains(what));
            if !known && CLI_ONLY.iter().any(|p| code.contains(p)) {
                found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "only src/cli/ prints or reads env/cwd; found:\n{}", found.join("\n"));
}
