//! The text report of `kiln verify`: what was varied, then either one line saying the builds
//! are identical, or every difference from image down to file.

use super::VerifyReport;
use super::compare::{FieldDiff, FileDiff, LayerDiff, PlatformDiff};
use super::files::{FileFacts, short};
use crate::oci::digest::Digest;
use std::fmt::Write;

fn digest(d: &Option<Digest>) -> String {
    d.as_ref().map_or("(none)".into(), short)
}

/// A JSON value as it stands in the document, cut after 80 characters.
fn value(v: &Option<serde_json::Value>) -> String {
    let s = v.as_ref().map_or("(absent)".to_string(), |v| v.to_string());
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// How one side's entry shows the facts that differ.
fn facts(f: &Option<FileFacts>, what: &[String]) -> String {
    let Some(f) = f else { return "absent".into() };
    let mut parts = Vec::new();
    for w in what {
        match w.as_str() {
            "content" => parts.push(match &f.sha256 {
                Some(h) => format!("sha256:{} {} B", &h[..12.min(h.len())], f.size),
                None => format!("{} B", f.size),
            }),
            "mode" => parts.push(format!("mode {:04o}", f.mode)),
            "owner" => parts.push(format!("owner {}:{}", f.uid, f.gid)),
            "mtime" => parts.push(format!("mtime {}", f.mtime)),
            "link target" => parts.push(format!("-> {}", f.target.as_deref().unwrap_or(""))),
            "kind" | "missing" => parts.push(f.kind.clone()),
            _ => {}
        }
    }
    parts.join(", ")
}

fn file(s: &mut String, f: &FileDiff) {
    let _ = writeln!(
        s,
        "      {}: {} differs ({} | {})",
        f.path,
        f.differences.join(", "),
        facts(&f.first, &f.differences),
        facts(&f.second, &f.differences)
    );
    if let Some(m) = &f.made_by {
        let _ = writeln!(s, "        made by: {m}");
    }
}

fn field(s: &mut String, f: &FieldDiff) {
    let _ = writeln!(s, "    {} {}: {} | {}", f.document, f.path, value(&f.first), value(&f.second));
}

fn layer(s: &mut String, l: &LayerDiff) {
    let key = l.key.as_deref().map(|k| format!(" ({k})")).unwrap_or_default();
    let _ = writeln!(s, "    layer {}{key}: {} | {}", l.position, digest(&l.first), digest(&l.second));
    for f in &l.files {
        file(s, f);
    }
    if l.entry_order {
        let _ = writeln!(s, "      the entries stand in another order in the tar");
    }
}

fn platform(s: &mut String, p: &PlatformDiff) {
    match &p.only_in {
        Some(side) => {
            let _ = writeln!(s, "  {}: only in the {side} build", p.platform);
        }
        None => {
            let _ = writeln!(s, "  {}: manifest {} | {}", p.platform, digest(&p.first), digest(&p.second));
        }
    }
    for f in &p.fields {
        field(s, f);
    }
    for l in &p.layers {
        layer(s, l);
    }
}

pub fn render_text(r: &VerifyReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "varied (first | second build):");
    for v in &r.variations {
        let _ = writeln!(s, "  {:<22} {} | {}", v.what, v.first, v.second);
    }
    for n in &r.not_varied {
        let _ = writeln!(s, "  not varied: {n}");
    }
    let c = &r.comparison;
    let counted =
        format!("{} image(s), {} platform(s), {} layer(s)", c.images_compared, c.platforms_compared, c.layers_compared);
    if r.reproducible {
        let _ = writeln!(s, "reproducible: {counted} identical to {}", r.against);
        return s;
    }
    let _ = writeln!(s, "NOT reproducible: compared {counted} with {}; these differ (first | second):", r.against);
    for i in &c.images {
        match &i.only_in {
            Some(side) => {
                let _ = writeln!(s, "image {}: only in the {side} build", i.name);
            }
            None => {
                let _ = writeln!(s, "image {}: {} | {}", i.name, digest(&i.first), digest(&i.second));
            }
        }
        for f in &i.fields {
            field(&mut s, f);
        }
        for p in &i.platforms {
            platform(&mut s, p);
        }
    }
    if let Some(d) = &r.report_dir {
        let _ = writeln!(s, "wrote {} differing file(s) to {d}", r.files_written);
    }
    s
}
