//! The pipeline on the fake toolchain (`toolchain::fake`): recipe → plan → layers → images →
//! diff, bundle and apply, with Rust, C and Go build steps, without a compiler, in well under a
//! second.

use crate::build::{BuildOptions, BuildSummary, build};
use crate::plan::{BuildStep, Plan, PlanOptions, resolve};
use crate::progress::Quiet;
use crate::toolchain::facts::Facts;
use crate::toolchain::fake::{self, Fake};
use std::path::{Path, PathBuf};

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "demo" {
    base "scratch"
    copy "site/" "/srv/www/"
    file "/etc/demo.conf" "verbose = true\n"
    rust "demo"
    entrypoint "/usr/local/bin/demo"
}
"#;

struct Project {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    facts: Facts,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("kiln.kdl", RECIPE);
        write("Cargo.toml", "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n");
        write("Cargo.lock", "version = 4\n");
        write("src/main.rs", "fn main() {}\n");
        write("site/index.html", "<h1>demo</h1>\n");
        let facts = fake::facts(dir.path(), "demo", &["demo"]);
        Project { dir, cache: tempfile::tempdir().unwrap(), facts }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn plan(&self) -> Plan {
        self.plan_of(RECIPE)
    }

    fn plan_of(&self, text: &str) -> Plan {
        let recipe = crate::recipe::parse("kiln.kdl", text).unwrap();
        let opts = PlanOptions {
            root: self.root().to_path_buf(),
            cache_dir: Some(self.cache.path().to_path_buf()),
            facts: self.facts.clone(),
            ..Default::default()
        };
        resolve(&recipe, &opts).unwrap()
    }

    /// Builds `plan` into `out` (beside the project) on the fake toolchain.
    fn build(&self, plan: &Plan, out: &str) -> (BuildSummary, PathBuf) {
        let out = self.cache.path().join(out);
        let toolchain = Fake { dir: self.cache.path().join("fake-bin") };
        let opts = BuildOptions {
            root: self.root(),
            out: &out,
            cache: self.cache.path(),
            toolchain: &toolchain,
            tags: &[],
            attest: None,
            remote: None,
            kiln: None,
        };
        (build(plan, &opts, &Quiet).unwrap(), out)
    }
}

#[test]
fn a_plan_with_a_rust_step_builds_on_the_fake_toolchain_and_reads_back() {
    let p = Project::new();
    let plan = p.plan();
    assert_eq!(plan.steps().count(), 3, "one build step per platform");
    assert!(plan.steps().all(|s| s.describe().starts_with("demo (bin demo) for ")));
    let json = plan.to_json();
    assert!(!json.contains(&*p.root().to_string_lossy()), "the plan holds a host path:\n{json}");
    assert_eq!(Plan::from_json(&json).unwrap(), plan);
    assert!(crate::plan::changes(&plan, p.root(), &p.facts, Some(p.cache.path())).is_empty());
    let (summary, out) = p.build(&plan, "a");
    assert_eq!(summary.images.len(), 1);
    assert_eq!(summary.images[0].platforms.len(), 3);
    for (step, binary) in plan.rust.iter().zip(&summary.binaries) {
        assert_eq!(
            binary.sha256,
            crate::oci::digest::sha256_hex(&Fake::bytes(crate::plan::Step::Rust(step))),
            "{}",
            step.platform
        );
    }
    let index = std::fs::read(out.join("index.json")).unwrap();
    assert_eq!(crate::oci::digest::sha256_digest(&index), summary.index_digest);
    // The same plan, again and from its JSON, writes the same bytes.
    let (again, _) = p.build(&Plan::from_json(&json).unwrap(), "b");
    assert_eq!(again.index_digest, summary.index_digest);
    assert_eq!(again.cached_layers, summary.layers, "the second build takes every layer from the cache");
}

#[test]
fn a_changed_input_is_named_and_moves_only_its_layers() {
    let p = Project::new();
    let old_plan = p.plan();
    let (old, old_out) = p.build(&old_plan, "old");
    p.write("src/main.rs", "fn main() { let _release = 2; }\n");
    let changes = crate::plan::changes(&old_plan, p.root(), &p.facts, Some(p.cache.path()));
    assert_eq!(changes.len(), 3, "sources_sha256, once per platform (the id is not repeated): {changes:?}");
    assert!(changes.iter().all(|c| c.contains("sources_sha256")), "{changes:?}");
    let new_plan = p.plan();
    let (new, new_out) = p.build(&new_plan, "new");
    assert_ne!(new.index_digest, old.index_digest);
    use crate::inputs::registry::{Options, Release};
    let (old, new_release) = (Release::Layout(old_out.clone()), Release::Layout(new_out.clone()));
    let report = crate::update::diff((&old, &new_release), &Options::default(), &[], (None, false)).unwrap();
    for platform in &report.images[0].platforms {
        assert_eq!(platform.added.len(), 1, "{}: only the binary's layer is new", platform.platform);
        assert_eq!(platform.kept.len(), 2, "{}: the site's and the file's layers are kept", platform.platform);
    }
    let bundle = p.cache.path().join("update.tar");
    crate::update::bundle((&old, &new_release), &Options::default(), (&[], false), &bundle).unwrap();
    crate::update::apply(&bundle, &old_out, false, None).unwrap();
    let applied = std::fs::read(old_out.join("index.json")).unwrap();
    assert_eq!(crate::oci::digest::sha256_digest(&applied), new.index_digest);
}

/// The blob seams hold: the plan's layers and images written to an in-memory sink (no
/// directory, lock or rename anywhere) are the bytes `build` writes to a layout, and the walk
/// reads the same release back from either.
#[test]
fn an_in_memory_blob_store_receives_the_release_build_writes_and_walks_back() {
    use crate::store::{BlobSink, LayoutDir, memory::Memory, walk};
    let p = Project::new();
    let plan = p.plan();
    let (summary, out) = p.build(&plan, "a");
    let toolchain = Fake { dir: p.cache.path().join("fake-bin") };
    let compiled = crate::build::compile_all(&plan, (p.cache.path(), None), &toolchain, &Quiet).unwrap();
    let files = crate::inputs::debian::store::file_store(p.cache.path());
    let inputs = crate::layer::Inputs { root: p.root(), compiled: &compiled, store: &files, pulled: &files };
    let memory = Memory::default();
    let mut layers = std::collections::BTreeMap::new();
    for l in plan.images.iter().flat_map(|i| &i.platforms).flat_map(|p| &p.layers) {
        let blob = crate::layer::build_layer(l, &inputs, plan.epoch, plan.compression, &memory).unwrap();
        layers.insert(l.id.clone(), blob);
    }
    let created = crate::plan::rfc3339(plan.epoch);
    let built: Vec<_> =
        plan.images.iter().map(|i| crate::image::write_image(i, &created, &layers, &memory).unwrap()).collect();
    let index = crate::image::layout_index(&built, &[], &[]).unwrap();
    assert_eq!(crate::oci::digest::sha256_digest(&index), summary.index_digest, "the same release, byte for byte");
    assert_eq!(memory.stored_bytes(), summary.blob_bytes);
    memory.set_index(&index);
    let digests = |images: Vec<walk::Image>| -> Vec<(String, String, Vec<String>)> {
        let platforms = images.iter().flat_map(|i| i.platforms.iter().map(move |p| (i, p)));
        platforms
            .map(|(i, p)| {
                (i.name.clone(), p.blob.digest.to_string(), p.layers.iter().map(|l| l.digest.to_string()).collect())
            })
            .collect()
    };
    let from_memory = digests(walk::images(&memory, None).unwrap());
    assert_eq!(from_memory.len(), 3, "one image, three platforms: {from_memory:?}");
    assert_eq!(from_memory, digests(walk::images(&LayoutDir::new(&out), None).unwrap()));
}

#[test]
fn a_workspace_that_compiles_c_records_its_c_compiler_and_needs_the_pinned_zig() {
    let mut p = Project::new();
    assert!(p.plan().rust.iter().all(|b| b.c_compiler.is_none()), "no `cc` in Cargo.lock: no C compiler");
    p.write("Cargo.lock", "version = 4\n\n[[package]]\nname = \"cc\"\nversion = \"1.2.0\"\n");
    let zig = crate::plan::facts::Zig { path: "/fake/zig".into(), version: "0.17.0".into(), sha256: "ab".repeat(32) };
    p.facts.zig = Some(Ok(zig));
    let plan = p.plan();
    for b in &plan.rust {
        let cc = b.c_compiler.as_deref().unwrap();
        match b.triple.as_str() {
            "x86_64-unknown-linux-musl" => {
                assert_eq!(cc, format!("zig cc 0.17.0 (sha256 {}) -target x86_64-linux-musl", "ab".repeat(32)))
            }
            "aarch64-unknown-linux-musl" => assert!(cc.ends_with("-target aarch64-linux-musl"), "{cc}"),
            _ => assert_eq!(cc, "rust-lld (fake)", "glibc targets compile C with their linker"),
        }
    }
    // No zig, or another version: the musl builds cannot be planned.
    let missing = crate::plan::facts::Missing {
        code: crate::diag::Code::ToolchainMissingZig,
        message: "no zig is installed".into(),
        help: "install it".into(),
    };
    p.facts.zig = Some(Err(missing));
    let recipe = crate::recipe::parse("kiln.kdl", RECIPE).unwrap();
    let opts = PlanOptions { root: p.root().to_path_buf(), facts: p.facts.clone(), ..Default::default() };
    let problems = resolve(&recipe, &opts).unwrap_err();
    assert!(problems.iter().any(|x| x.code == crate::diag::Code::ToolchainMissingZig), "{problems:?}");
}

#[test]
fn rust_c_and_go_nodes_plan_and_build_on_the_stand_in_toolchain() {
    let mut p = Project::new();
    p.write("probe/probe.c", "#include \"probe.h\"\nint main(void) { return 0; }\n");
    p.write("probe/probe.h", "#define X 1\n");
    p.write("include/shared.h", "#define Y 1\n");
    p.write("notes/readme.txt", "not read by the compile\n");
    p.write("agent/go.mod", "module example.com/agent\n\ngo 1.19\n");
    p.write("agent/main.go", "package main\n\nfunc main() {}\n");
    let sha = |c: &str| c.repeat(64);
    p.facts.zig =
        Some(Ok(crate::plan::facts::Zig { path: "/fake/zig".into(), version: "0.17.0".into(), sha256: sha("a") }));
    let go = crate::plan::facts::Go {
        path: "/fake/go".into(),
        version: "go version go1.19.8 linux/amd64".into(),
        sha256: sha("b"),
    };
    p.facts.go = Some(Ok(go));
    let recipe = RECIPE.replace(
        "    rust \"demo\"\n",
        "    rust \"demo\"\n    c \"probe\" {\n        sources \"probe/*.c\"\n        include \"include/\"\n    }\n    go \"./agent\"\n",
    );
    let plan = p.plan_of(&recipe);
    let languages: Vec<&str> = plan.steps().map(|s| s.language()).collect();
    assert_eq!(languages, ["rust", "rust", "rust", "c", "c", "c", "go", "go", "go"]);
    assert_eq!(plan.c[2].target, "arm-linux-musleabihf");
    assert_eq!(plan.c[0].input_files, 3, "the source, the header beside it and the include directory's");
    assert_eq!((plan.go[2].goarch.as_str(), plan.go[2].goarm.as_deref()), ("arm", Some("7")));
    assert_eq!(plan.go[0].mod_mode, "readonly", "no vendor/");
    assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan, "C and Go steps read back");
    let layers: Vec<&str> = plan.images[0].platforms[0].layers.iter().map(|l| l.key.as_str()).collect();
    for key in ["rust demo/demo", "c probe", "go ./agent"] {
        assert!(layers.contains(&key), "a layer of its own for {key}: {layers:?}");
    }
    let (summary, _) = p.build(&plan, "out");
    let built: Vec<(&str, &str)> = summary.binaries.iter().map(|b| (b.language.as_str(), b.bin.as_str())).collect();
    assert_eq!(built.len(), 9, "{built:?}");
    assert!(built.contains(&("c", "probe")) && built.contains(&("go", "agent")), "{built:?}");

    // A header under an include directory is an input of the C steps only; a file the compile
    // cannot read is none.
    p.write("notes/readme.txt", "changed\n");
    let unrelated = p.plan_of(&recipe);
    assert_eq!((&unrelated.c, &unrelated.go), (&plan.c, &plan.go), "a file no compile reads changes no C or Go step");
    p.write("include/shared.h", "#define Y 2\n");
    let again = p.plan_of(&recipe);
    assert!(again.c.iter().zip(&plan.c).all(|(a, b)| a.id != b.id), "C ids follow their headers");
    assert_eq!(again.go, plan.go, "Go steps do not read the C headers");
}

#[test]
fn every_cut_of_the_plan_merges_into_the_single_build_and_each_binary_is_built_once() {
    use crate::plan::shard::{Scheme, shards};
    let p = Project::new();
    let plan = p.plan();
    let (single, _) = p.build(&plan, "single");
    let toolchain = Fake { dir: p.cache.path().join("fake-bin") };
    for scheme in [Scheme::Platform, Scheme::Step, Scheme::Count(2), Scheme::Count(9)] {
        let cut = shards(&plan, scheme);
        let steps: Vec<&String> = cut.iter().flat_map(|s| &s.steps).collect();
        assert_eq!(steps.len(), plan.steps().count(), "{scheme:?}: each step in one shard: {cut:?}");
        let mut dirs = Vec::new();
        for s in &cut {
            let out = p.cache.path().join(format!("shard-{}", s.id));
            // Each shard with a cache of its own, as on a runner of its own.
            let cache = tempfile::tempdir().unwrap();
            let opts = BuildOptions {
                root: p.root(),
                out: &out,
                cache: cache.path(),
                toolchain: &toolchain,
                tags: &[],
                attest: None,
                remote: None,
                kiln: None,
            };
            let summary = crate::build::shard::build_shard(&plan, &s.id, &opts, &Quiet).unwrap();
            assert_eq!(summary.binaries.len(), s.steps.len(), "{scheme:?} {}: only its own steps", s.id);
            dirs.push(out.display().to_string());
        }
        let merged = p.cache.path().join("merged");
        let target = crate::merge::MergeTarget { out: Some(&merged), push: None, tags: &[], work: p.cache.path() };
        let m = crate::merge::merge(&dirs, &target, &Default::default(), &Quiet).unwrap();
        assert_eq!(m.index_digest, single.index_digest, "{scheme:?}");
        for d in &dirs {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    assert_eq!(crate::plan::shard::scheme_of("3of9"), Scheme::Count(9));
    assert_eq!(crate::plan::shard::scheme_of("linux-arm-v7"), Scheme::Platform);
    assert_eq!(crate::plan::shard::scheme_of("rust-demo-linux-amd64"), Scheme::Step);
    assert!(crate::plan::shard::find(&plan, "4of2").is_err());
    assert!(crate::plan::shard::find(&plan, "linux-s390x").is_err());
}
