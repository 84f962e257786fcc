//! The plan as text for people: `kiln plan`.

use super::*;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The first 12 characters of a hash (all of a shorter or odd one: a saved plan can hold anything).
fn short(hex: &str) -> &str {
    hex.char_indices().nth(12).map_or(hex, |(i, _)| &hex[..i])
}

pub fn render_text(plan: &Plan) -> String {
    let mut s = String::new();
    let epoch_from = match plan.epoch_source {
        EpochSource::SourceDateEpoch => "SOURCE_DATE_EPOCH",
        EpochSource::Recipe => "recipe",
        EpochSource::Default => "default",
    };
    let _ = writeln!(
        s,
        "plan format {}  epoch {} ({epoch_from})  compression {}",
        plan.plan_format,
        plan.epoch,
        plan.compression.describe()
    );
    if let Some(d) = &plan.debian {
        let _ = writeln!(
            s,
            "\ndebian {} {} (release {}, {}; Release sha256:{}; signature {})",
            d.mirror,
            d.suite,
            d.release.version,
            d.release.date,
            short(&d.release.sha256),
            d.release.signature
        );
    }
    for b in &plan.rust {
        rust_build(&mut s, b);
    }
    for b in &plan.c {
        c_build(&mut s, b);
    }
    for b in &plan.go {
        go_build(&mut s, b);
    }
    let rust = plan.rust.iter().map(|b| (b.id.as_str(), "rust build"));
    let c = plan.c.iter().map(|b| (b.id.as_str(), "c build"));
    let steps: StepNames<'_> = rust.chain(c).chain(plan.go.iter().map(|b| (b.id.as_str(), "go build"))).collect();
    for image in &plan.images {
        let _ = writeln!(s, "\nimage {}  base {}", image.name, image.base);
        for (k, v) in &image.annotations {
            let _ = writeln!(s, "  annotation {k}={v}");
        }
        for p in &image.platforms {
            let _ = writeln!(s, "  platform {}", p.platform);
            config(&mut s, &p.config);
            for (n, l) in p.layers.iter().enumerate() {
                layer(&mut s, n, l, &steps);
            }
        }
    }
    s
}

fn network(i: facts::Isolation) -> &'static str {
    match i {
        facts::Isolation::NetworkNamespace => "none (private network namespace)",
        facts::Isolation::UserNetworkNamespace => "none (private user and network namespace)",
        facts::Isolation::OfflineOnly => "offline flags only (no namespaces here)",
    }
}

fn c_build(s: &mut String, b: &CBuild) {
    let _ = writeln!(s, "\nc build {}  {} for {}", short(&b.id), b.name, b.platform);
    let _ = writeln!(s, "  target    {}", b.target);
    let _ = writeln!(s, "  compiler  {}", b.compiler);
    let _ = writeln!(s, "  sources   {}", b.sources.join(" "));
    if !b.include.is_empty() {
        let _ = writeln!(s, "  include   {}", b.include.join(" "));
    }
    let _ = writeln!(s, "  args      {}", b.args.join(" "));
    let _ = writeln!(s, "  inputs    {} files, sha256:{}", b.input_files, short(&b.inputs_sha256));
    let _ = writeln!(s, "  network   {}", network(b.network));
}

fn go_build(s: &mut String, b: &GoBuild) {
    let _ = writeln!(s, "\ngo build {}  {} ({}) for {}", short(&b.id), b.name, b.package, b.platform);
    let arm = b.goarm.as_ref().map(|v| format!(" GOARM={v}")).unwrap_or_default();
    let _ = writeln!(s, "  target    GOOS=linux GOARCH={}{arm} CGO_ENABLED=0", b.goarch);
    let _ = writeln!(s, "  go        {}", b.go);
    let _ = writeln!(s, "  module    {}  package {}  -mod={}", b.module, b.target, b.mod_mode);
    if !b.tags.is_empty() {
        let _ = writeln!(s, "  tags      {}", b.tags.join(","));
    }
    let _ = writeln!(s, "  ldflags   {}", b.ldflags);
    let _ = writeln!(s, "  sources   {} files, sha256:{}", b.source_files, short(&b.sources_sha256));
    let _ = writeln!(s, "  network   {}", network(b.network));
}

fn rust_build(s: &mut String, b: &RustBuild) {
    let network = network(b.network);
    let _ = writeln!(s, "\nrust build {}  {} (bin {}) for {}", short(&b.id), b.package, b.bin, b.platform);
    let _ = writeln!(s, "  target    {} (profile {})", b.triple, b.profile);
    if !b.features.is_empty() || b.no_default_features {
        let _ = writeln!(
            s,
            "  features  {}{}",
            b.features.join(","),
            if b.no_default_features { " (no default features)" } else { "" }
        );
    }
    let _ = writeln!(s, "  manifest  {}  workspace {}", b.manifest, b.workspace);
    let _ = writeln!(s, "  rustc     {}", b.rustc);
    let _ = writeln!(s, "  cargo     {}", b.cargo);
    let _ = writeln!(s, "  linker    {}", b.linker);
    if let Some(cc) = &b.c_compiler {
        let _ = writeln!(s, "  C         {cc}");
    }
    let _ = writeln!(s, "  strip     {}", b.strip);
    let _ = writeln!(s, "  rustflags {}", b.rustflags.join(" "));
    let _ = writeln!(
        s,
        "  inputs    Cargo.lock sha256:{}, {} source files sha256:{}",
        short(&b.lockfile_sha256),
        b.source_files,
        short(&b.sources_sha256)
    );
    let _ = writeln!(s, "  network   {network}");
}

fn config(s: &mut String, c: &ConfigPlan) {
    if let Some(e) = &c.entrypoint {
        let _ = writeln!(s, "    entrypoint {e:?}");
    }
    if let Some(e) = &c.cmd {
        let _ = writeln!(s, "    cmd {e:?}");
    }
    for e in &c.env {
        let _ = writeln!(s, "    env {e}");
    }
    if let Some(u) = &c.user {
        let _ = writeln!(s, "    user {u} ({})", c.user_from.describe());
    }
    if let Some(w) = &c.workdir {
        let _ = writeln!(s, "    workdir {w}");
    }
    if !c.exposed_ports.is_empty() {
        let _ = writeln!(s, "    expose {}", c.exposed_ports.join(" "));
    }
    for (k, v) in &c.labels {
        let _ = writeln!(s, "    label {k}={v}");
    }
}

/// Each build step's id, to the name its section has: `rust build`, `c build`, `go build`.
type StepNames<'p> = BTreeMap<&'p str, &'static str>;

fn layer(s: &mut String, n: usize, l: &LayerPlan, steps: &StepNames<'_>) {
    match &l.prebuilt {
        Some(p) => {
            let _ = writeln!(
                s,
                "    layer {} {}  {}  {} B from {}",
                n + 1,
                l.name,
                p.digest,
                p.size,
                p.registry.as_deref().unwrap_or(&p.layout)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "    layer {} {}  id {}  ({} entries, {})",
                n + 1,
                l.name,
                short(&l.id),
                l.entries.len(),
                serde_json::to_value(l.volatility)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            );
        }
    }
    let _ = writeln!(s, "      why: {}", l.reason);
    for e in &l.entries {
        let kind = match e.kind {
            EntryKind::Dir => "dir ",
            EntryKind::File => "file",
            EntryKind::Symlink => "link",
        };
        let _ = write!(s, "      {kind} {:04o} {}:{} {}", e.mode, e.uid, e.gid, e.path);
        if let Some(t) = &e.target {
            let _ = write!(s, " -> {t}");
        }
        if let (Some(size), Some(sha)) = (e.size, &e.sha256) {
            let _ = write!(s, "  {size} B sha256:{}", short(sha));
        }
        if let Some(id) = &e.build {
            let what = steps.get(id.as_str()).copied().unwrap_or("build");
            let _ = write!(s, "  built by {what} {}", short(id));
        }
        if let Some(from) = &e.from {
            let _ = write!(s, "  {from}");
        }
        match (&e.source, &e.content) {
            (Some(src), _) => {
                let _ = write!(s, "  from {src}");
            }
            (None, Some(_)) => s.push_str("  inline"),
            _ => {}
        }
        s.push('\n');
    }
}
