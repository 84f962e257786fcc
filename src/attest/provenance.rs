//! Build provenance: an in-toto Statement v1 whose subject is one platform manifest and whose
//! predicate is SLSA provenance v1, naming the recipe's digest, `kiln.lock`'s, each build
//! step's toolchain and input digests, the base layers and Debian packages taken, and the
//! parameters that decide the bytes (epoch, compression). Nothing in it depends on when,
//! where or by whom the build ran, so a rebuild gives the same statement.

use crate::inputs::debian::lock::Lock;
use crate::oci::digest::Digest;
use crate::plan::{BuildStep, ImagePlan, Plan, PlatformPlan, Step};
use serde_json::{Value, json};

pub const IN_TOTO_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// The build type kiln's provenance describes: a recipe built by kiln into an OCI layout.
pub const BUILD_TYPE: &str = "urn:kiln:build-type:recipe:v1";

/// What the provenance says of the build beside the plan.
pub struct Inputs<'a> {
    /// The recipe file's name, as the user gave it, and the sha256 of its bytes.
    pub recipe: (&'a str, &'a str),
    /// `kiln.lock`'s sha256 and contents, when there is one.
    pub lock: Option<(&'a str, &'a Lock)>,
}

fn dep(name: &str, uri: &str, sha256: &str) -> Value {
    json!({"name": name, "uri": uri, "digest": {"sha256": sha256}})
}

/// A hex sha256 out of a description such as `zig cc 0.17.0 (sha256 abc…)`.
fn sha_in(desc: &str) -> Option<&str> {
    let at = desc.find("sha256 ")? + 7;
    let hex: &str = desc[at..].split(|c: char| !c.is_ascii_hexdigit()).next()?;
    (hex.len() == 64).then_some(hex)
}

fn step_deps(step: Step<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    match step {
        Step::Rust(b) => {
            out.push(dep(&format!("sources of {}", b.package), &format!("file:{}", b.workspace), &b.sources_sha256));
            out.push(dep("Cargo.lock", &format!("file:{}/Cargo.lock", b.workspace), &b.lockfile_sha256));
            out.push(
                json!({"name": "rustc", "annotations": {"version": b.rustc, "cargo": b.cargo, "linker": b.linker}}),
            );
        }
        Step::C(b) => {
            out.push(dep(&format!("sources of {}", b.name), "file:.", &b.inputs_sha256));
            let mut zig = json!({"name": "zig", "annotations": {"version": b.compiler}});
            if let Some(h) = sha_in(&b.compiler) {
                zig["digest"] = json!({"sha256": h});
            }
            out.push(zig);
        }
        Step::Go(b) => {
            out.push(dep(&format!("sources of {}", b.package), &format!("file:{}", b.module), &b.sources_sha256));
            let mut go = json!({"name": "go", "annotations": {"version": b.go}});
            if let Some(h) = sha_in(&b.go) {
                go["digest"] = json!({"sha256": h});
            }
            out.push(go);
        }
    }
    out
}

/// The statement for `image` on platform `p`, whose manifest is `manifest`.
pub fn statement(
    plan: &Plan,
    (image, p): (&ImagePlan, &PlatformPlan),
    manifest: &Digest,
    inputs: &Inputs<'_>,
) -> Vec<u8> {
    let mut deps = vec![dep("recipe", &format!("file:{}", inputs.recipe.0), inputs.recipe.1)];
    if let Some((sha, _)) = inputs.lock {
        deps.push(dep("kiln.lock", "file:kiln.lock", sha));
    }
    let used: Vec<&str> = p.layers.iter().flat_map(|l| &l.entries).filter_map(|e| e.build.as_deref()).collect();
    for step in plan.steps().filter(|s| used.contains(&s.id())) {
        deps.extend(step_deps(step));
    }
    let mut debs = std::collections::BTreeSet::new();
    for l in &p.layers {
        if let Some(b) = &l.prebuilt {
            let uri = b.registry.clone().unwrap_or_else(|| format!("oci-layout:{}", b.layout));
            deps.push(dep("base layer", &uri, b.digest.hex()));
        }
        for e in &l.entries {
            if let Some(from) = e.from.as_deref().and_then(|f| f.strip_prefix("deb ")) {
                debs.insert(from.split(' ').next().unwrap_or_default().to_string());
            }
        }
    }
    if let Some((_, lock)) = inputs.lock {
        for p in lock.packages.iter().filter(|pk| debs.contains(&pk.name)) {
            deps.push(dep(&format!("deb {} {} {}", p.name, p.version, p.debian_arch), &p.url, &p.sha256));
        }
    }
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": format!("{}@{}", image.name, p.platform), "digest": {"sha256": manifest.hex()}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"recipe": inputs.recipe.0, "image": image.name, "platform": p.platform.to_string()},
                "internalParameters": {
                    "epoch": plan.epoch,
                    "epoch_source": plan.epoch_source,
                    "compression": plan.compression,
                    "plan_format": plan.plan_format,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": "urn:kiln:builder", "version": {"kiln": env!("CARGO_PKG_VERSION")}},
            },
        },
    });
    crate::oci::canonical::to_vec(&statement)
}
