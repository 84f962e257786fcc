//! C and Go programs, and one image of three languages: `examples/hello-c`, `examples/hello-go`
//! and `examples/polyglot` built for all three platforms and every binary run (amd64 natively
//! and under runc from the image, arm64 under qemu-aarch64-static, arm/v7 under
//! qemu-arm-static), each static and stripped as readelf reads it; built again elsewhere
//! (another directory, HOME, cargo home, umask, time zone, an empty kiln cache) to the same
//! index digests. Then what a C compile may read, and the errors of both nodes.

use crate::common::*;
use std::path::Path;
use std::process::Command;

const PLATFORMS: [(&str, Option<&str>, &str); 3] =
    [("amd64", None, "x86_64"), ("arm64", None, "aarch64"), ("arm", Some("v7"), "arm")];

/// What each example's programs print on a platform (`machine` is uname's name for it, `arch`
/// Go's). fnv1a("kiln") = c30f4273 as Python computes it; sha256("kiln") starts cdfe9ad5 as
/// sha256sum says.
fn expected(example: &str, arch: &str, machine: &str) -> Vec<(&'static str, String)> {
    match example {
        "hello-c" => vec![("hello-c", format!("hello from C on {machine}: fnv1a(kiln)=c30f4273 sqrt(2)=1.414214\n"))],
        "hello-go" => {
            vec![("hello-go", format!("hello from Go, kiln (version 1.0) on linux/{arch}: sha256(kiln)=cdfe9ad5\n"))]
        }
        _ => vec![
            ("api", format!("api (Rust) on {}: fnv1a(kiln)=c30f4273\n", if arch == "arm" { "arm" } else { machine })),
            ("agent", format!("agent (Go) on {arch}: fnv1a(kiln)=c30f4273\n")),
            ("probe", format!("probe (C) on {machine}: fnv1a(kiln)=c30f4273\n")),
        ],
    }
}

fn run_binary(arch: &str, bin: &Path) -> String {
    match arch {
        "amd64" => run(&mut Command::new(bin)),
        "arm64" => run(Command::new(require("qemu-aarch64-static")).arg(bin)),
        _ => run(Command::new(require("qemu-arm-static")).arg(bin)),
    }
}

fn check_static_and_stripped(arch: &str, bin: &Path) {
    let program_headers = run(Command::new(require("readelf")).args(["-l", "-W"]).arg(bin));
    assert!(!program_headers.contains("INTERP"), "{arch} {} is static: {program_headers}", bin.display());
    let sections = run(Command::new(require("readelf")).args(["-S", "-W"]).arg(bin));
    assert!(!sections.contains(" .symtab") && !sections.contains(".debug_"), "{arch} {}: {sections}", bin.display());
}

#[test]
fn c_go_and_three_language_examples_build_run_and_reproduce_on_three_platforms() {
    require("zig-0.17.0");
    require("go");
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for example in ["hello-c", "hello-go", "polyglot"] {
        // The binaries of a first build (shared by the tests); the build below, elsewhere and
        // from an empty cache, compiles them again and must give the same image.
        crate::compiled::seed(example, cache.path());
        let dir = work.path().join("a").join(example);
        copy_project(&repo_root().join("examples").join(example), &dir);
        let built = run(kiln()
            .current_dir(&dir)
            .env("KILN_CACHE_DIR", cache.path())
            .env("CARGO_HOME", cargo_home())
            .args(["build", "-q", "--json", "--out", "out"]));
        let s: serde_json::Value = serde_json::from_str(&built).unwrap();
        for (arch, variant, machine) in PLATFORMS {
            let single = single_platform(
                &dir.join("out"),
                example,
                arch,
                variant,
                &work.path().join(format!("{example}-{arch}")),
            );
            oci_validate(&single, example);
            let bundle = umoci_unpack(&single, example, &work.path().join(format!("bundle-{example}-{arch}")));
            for (name, says) in expected(example, arch, machine) {
                let bin = bundle.join("rootfs/usr/local/bin").join(name);
                assert_eq!(run_binary(arch, &bin), says, "{example} {name} on {arch}");
                check_static_and_stripped(arch, &bin);
                if arch == "arm" && (name == "hello-c" || name == "probe") {
                    // Built for ARMv7-A as Rust's armv7 targets are: VFPv3 with 16 double
                    // registers, no NEON.
                    let attributes = run(Command::new(require("readelf")).arg("-A").arg(&bin));
                    assert!(attributes.contains("Tag_FP_arch: VFPv3-D16"), "{name}: {attributes}");
                    assert!(!attributes.contains("Tag_Advanced_SIMD_arch"), "{name}: {attributes}");
                }
            }
            if arch == "amd64" {
                let first = &expected(example, arch, machine)[0].1;
                assert_eq!(&runc_run(&bundle, example), first, "{example}'s entrypoint under runc");
            }
        }
        digests.push((example, dir, s["index_digest"].as_str().unwrap().to_string()));
    }

    // Again elsewhere, with a kiln cache without binaries: nothing of the first run's paths,
    // owner's umask or time zone reaches the binaries.
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cache_b = tempfile::tempdir().unwrap();
    // Every binary is compiled again; zig's C library and Go's standard library, which every
    // compile shares, come from the first builds (verify:: rebuilds from nothing).
    for example in ["hello-c", "hello-go"] {
        crate::compiled::seed_toolchains(example, cache_b.path());
    }
    for (example, _, digest) in &digests {
        let dir = work.path().join("elsewhere/deeper").join(example);
        copy_project(&repo_root().join("examples").join(example), &dir);
        let script = format!("umask 077 && exec '{}' build -q --json --out out", env!("CARGO_BIN_EXE_kiln"));
        let again = run(Command::new("sh")
            .args(["-c", &script])
            .current_dir(&dir)
            .env("HOME", &home)
            .env("CARGO_HOME", cargo_home())
            .env("RUSTUP_HOME", rustup_home())
            .env("TZ", "Pacific/Chatham")
            .env("KILN_CACHE_DIR", cache_b.path()));
        let again: serde_json::Value = serde_json::from_str(&again).unwrap();
        assert_eq!(again["index_digest"], digest.as_str(), "{example}: the same image from another directory");
    }
}

/// A C project in a fresh directory: `files` (path, text) and a recipe whose `c` node has
/// `body`, for linux/amd64 only.
fn c_project(files: &[(&str, &str)], body: &str) -> Fixture {
    let f = Fixture::new();
    for (path, text) in files {
        f.write(path, text);
    }
    f.recipe(&format!(
        "kiln 1\ndefaults {{\n    platforms \"linux/amd64\"\n}}\nimage \"c\" {{\n    base \"scratch\"\n    c \"app\" {{\n{body}\n    }}\n}}\n"
    ));
    f
}

/// One kiln cache for the C tests below: zig keeps musl's libc there once built for a target
/// (a minute's work each time otherwise). Runs share a cache safely; entries are checked.
fn with_zig_cache(cmd: &mut Command) -> &mut Command {
    static CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    cmd.env("KILN_CACHE_DIR", CACHE.get_or_init(|| tempfile::tempdir().unwrap()).path())
}

#[test]
fn a_c_compile_error_names_the_source_and_says_what_the_compiler_said() {
    require("zig-0.17.0");
    let f = c_project(
        &[("src/main.c", "int main(void) { return 0; }\n"), ("src/broken.c", "int f(void) { return missing_name; }\n")],
        "        sources \"src/*.c\"",
    );
    let o = with_zig_cache(&mut f.build_cmd()).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::toolchain::compile") && err.contains("zig cc could not build src/broken.c"), "{err}");
    assert!(err.contains("missing_name") && err.contains("error"), "the compiler's message:\n{err}");
    assert!(!f.out().exists(), "a failed build wrote a layout");
}

#[test]
fn a_c_compile_reads_only_what_the_plan_hashed() {
    require("zig-0.17.0");
    // A project header outside the include directories and the sources' own: refused.
    let f = c_project(
        &[
            ("src/main.c", "#include \"../other/secret.h\"\nint main(void) { return SECRET; }\n"),
            ("other/secret.h", "#define SECRET 0\n"),
        ],
        "        sources \"src/main.c\"",
    );
    let o = with_zig_cache(&mut f.build_cmd()).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::toolchain::undeclared_input") && err.contains("other/secret.h"), "{err}");
    assert!(err.contains("include"), "the help names `include`:\n{err}");
    // Named as an include directory, it is hashed: the build passes, and a change to the
    // header is a change to the plan.
    f.recipe(
        &std::fs::read_to_string(f.recipe_path())
            .unwrap()
            .replace("sources \"src/main.c\"", "sources \"src/main.c\"\n        include \"other/\""),
    );
    let o = with_zig_cache(&mut f.build_cmd()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = || {
        let plan = run(with_zig_cache(kiln().current_dir(f.path())).args(["plan", "-q", "--json"]));
        let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
        plan["c"][0]["id"].as_str().unwrap().to_string()
    };
    let before = ids();
    f.write("other/secret.h", "#define SECRET 0 /* changed */\n");
    assert_ne!(ids(), before, "a header under an include directory is an input");
    // A header outside the recipe's directory: refused, whatever its path.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.h"), "#define EVIL 0\n").unwrap();
    let src = format!("#include \"{}\"\nint main(void) {{ return EVIL; }}\n", outside.path().join("evil.h").display());
    f.write("src/main.c", src);
    let o = with_zig_cache(&mut f.build_cmd()).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::toolchain::undeclared_input") && err.contains("evil.h"), "{err}");
    assert!(err.contains("only files inside the recipe's directory"), "{err}");
}

#[test]
fn a_go_module_whose_dependencies_are_not_vendored_builds_offline_or_says_to_fetch() {
    require("go");
    let f = Fixture::new();
    f.write("go.mod", "module example.com/needs\n\ngo 1.19\n\nrequire example.com/absent v1.0.0\n")
        .write(
            "go.sum",
            "example.com/absent v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\
             example.com/absent v1.0.0/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        )
        .write("main.go", "package main\n\nimport \"example.com/absent\"\n\nfunc main() { absent.Do() }\n")
        .recipe("kiln 1\ndefaults {\n    platforms \"linux/amd64\"\n}\nimage \"g\" {\n    base \"scratch\"\n    go \".\"\n}\n");
    let o = f.build();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::toolchain::compile") && err.contains("go build could not build"), "{err}");
    assert!(
        err.contains("GOPROXY=off") && err.contains("kiln fetch"),
        "no proxy during the build, and the way out:\n{err}"
    );
}

/// A recipe whose image holds `node`, in a directory with `src/a.c`, `nomod/` and no go.mod;
/// `kiln build` must exit 2 with `code` at `at` and write nothing.
fn refused(node: &str, code: &str, at: &str) {
    let f = Fixture::new();
    f.write("src/a.c", "int main(void) { return 0; }\n").write("nomod/main.go", "package main\n");
    f.recipe(&format!("kiln 1\nimage \"a\" {{\n    base \"scratch\"\n    {node}\n}}\n"));
    let o = f.build();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{node}: {err}");
    assert!(err.contains(code) && err.contains(&format!("kiln.kdl:{at}]")), "{node}: expected {code} at {at}:\n{err}");
    assert!(!f.out().exists(), "{node}: a refused recipe wrote a layout");
}

#[test]
fn bad_c_and_go_nodes_are_refused_at_their_line_and_column() {
    refused("c \"app\" {\n        sources \"../x.c\"\n    }", "kiln::recipe::source_outside", "5:17");
    refused("c \"app\" {\n        sources \"src/[.c\"\n    }", "kiln::recipe::glob", "5:17");
    refused(
        "c \"app\" {\n        sources \"src/*.c\"\n        flags \"-I/usr/include\"\n    }",
        "kiln::recipe::c_flag",
        "6:15",
    );
    refused("c \"app\" {\n        sources \"src/*.c\"\n        define \"1BAD\"\n    }", "kiln::recipe::c_flag", "6:16");
    refused("c \"app\" {\n        sources \"src/*.cpp\"\n    }", "kiln::plan::no_sources", "5:17");
    refused("c \"app\" {\n        sources \"src\"\n    }", "kiln::plan::no_sources", "5:17");
    refused("c \"app\" {\n        include \"src/\"\n    }", "kiln::recipe::missing_node", "4:5");
    refused("go \"../x\"", "kiln::recipe::source_outside", "4:8");
    refused("go \"./nomod\"", "kiln::plan::missing_go_mod", "4:8");
    refused("go \"./nomod\" {\n        ldflags \"-extld=gcc\"\n    }", "kiln::recipe::go_flag", "5:17");
    refused("go \"./nomod\" {\n        tags \"a b;c\"\n    }", "kiln::recipe::go_flag", "5:14");
}

#[test]
fn a_go_module_that_reads_from_outside_its_directory_is_refused() {
    let recipe = "kiln 1\nimage \"g\" {\n    base \"scratch\"\n    go \"./app\"\n}\n";
    // A local `replace` outside the module: go would read it as it is.
    let f = Fixture::new();
    f.write("app/go.mod", "module example.com/app\n\ngo 1.19\n\nreplace example.com/x => ../x\n")
        .write("app/main.go", "package main\n\nfunc main() {}\n")
        .write("x/go.mod", "module example.com/x\n")
        .recipe(recipe);
    let o = f.build();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::recipe::source_outside") && err.contains("kiln.kdl:4:8]"), "{err}");
    assert!(err.contains("replaces a module with `../x`"), "{err}");
    // A link inside the module to a host file.
    let f = Fixture::new();
    f.write("app/go.mod", "module example.com/app\n\ngo 1.19\n")
        .write("app/main.go", "package main\n\nfunc main() {}\n")
        .recipe(recipe);
    std::os::unix::fs::symlink("/etc/hostname", f.path().join("app/hostname.go")).unwrap();
    let o = f.build();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("kiln::recipe::source_outside") && err.contains("outside the recipe's directory"), "{err}");
    assert!(!f.out().exists());
}
