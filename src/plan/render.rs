//! The plan as text for people: `kiln plan`.

use super::*;
use std::fmt::Write;

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
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
    for image in &plan.images {
        let _ = writeln!(s, "\nimage {}  base {}", image.name, image.base);
        for (k, v) in &image.annotations {
            let _ = writeln!(s, "  annotation {k}={v}");
        }
        for p in &image.platforms {
            let _ = writeln!(s, "  platform {}", p.platform);
            let c = &p.config;
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
                let _ = writeln!(s, "    user {u}");
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
            for (n, l) in p.layers.iter().enumerate() {
                let _ =
                    writeln!(s, "    layer {} {}  id {}  ({} entries)", n + 1, l.name, short(&l.id), l.entries.len());
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
        }
    }
    s
}
