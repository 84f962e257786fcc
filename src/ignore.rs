//! Which files a `copy` of a directory leaves out: kiln's own output and caches, `.git`, the
//! patterns of a `.kilnignore` beside the recipe and a node's own `exclude` patterns.
//!
//! Patterns follow `.dockerignore`: paths relative to the directory they apply to, `*` and `?`
//! within one path component, `**` across any number of them, `[...]` classes, a leading `!`
//! re-including what an earlier pattern excluded, the last matching pattern winning, and a
//! pattern that matches a directory excluding everything below it.

use globset::{GlobBuilder, GlobMatcher};

/// The file beside the recipe whose patterns apply to every `copy`.
pub const KILNIGNORE: &str = ".kilnignore";

/// An ordered list of patterns.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    rules: Vec<(GlobMatcher, bool)>,
}

impl Patterns {
    /// Compiles patterns; a bad one is reported with its index and why.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Patterns, (usize, String)> {
        let mut rules = Vec::new();
        for (i, raw) in patterns.into_iter().enumerate() {
            let (negated, body) = match raw.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw.trim()),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                return Err((i, format!("pattern `{raw}` names nothing")));
            }
            let glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| (i, format!("pattern `{raw}`: {}", e.kind())))?;
            rules.push((glob.compile_matcher(), negated));
        }
        Ok(Patterns { rules })
    }

    /// The patterns of a `.kilnignore` file's text: one a line, `#` starts a comment line.
    /// A bad pattern is reported with its line number (from 1).
    pub fn from_file(text: &str) -> Result<Patterns, (usize, String)> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(n, l)| (n + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Patterns::new(lines.iter().map(|(_, l)| *l)).map_err(|(i, e)| (lines[i].0, e))
    }

    /// Whether some pattern re-includes: then an excluded directory must still be walked.
    pub fn has_negations(&self) -> bool {
        self.rules.iter().any(|(_, n)| *n)
    }

    /// Whether `rel` (relative, `/`-separated, no leading `/`) is left out: the last pattern
    /// that matches it or one of its parent directories decides.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = rel.trim_matches('/');
        let mut out = false;
        for (glob, negated) in &self.rules {
            if matches_or_parent(glob, rel) {
                out = !negated;
            }
        }
        out
    }
}

fn matches_or_parent(glob: &GlobMatcher, rel: &str) -> bool {
    if glob.is_match(rel) {
        return true;
    }
    let mut p = rel;
    while let Some((up, _)) = p.rsplit_once('/') {
        if glob.is_match(up) {
            return true;
        }
        p = up;
    }
    false
}

/// `filepath.Clean` as `.dockerignore` applies it: no leading or trailing `/`, no `.` or empty
/// components, `..` removing the component before it.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Names kiln itself leaves beside a recipe or an output: staging and swapped-out layouts,
/// lock files and the cache directory's old default name. Never copied into an image.
pub fn is_kiln_own(name: &str) -> bool {
    name.starts_with(".kiln-staging-")
        || name.starts_with(".kiln-old-")
        || name.ends_with(".kiln-lock")
        || name == ".kiln-cache"
        || name == ".git"
}

#[cfg(test)]
mod tests {
    use super::Patterns;

    fn p(list: &[&str]) -> Patterns {
        Patterns::new(list.iter().copied()).expect("valid patterns")
    }

    #[test]
    fn a_directory_pattern_excludes_everything_below() {
        let x = p(&["target/", "docs"]);
        assert!(x.excluded("target"));
        assert!(x.excluded("target/release/app"));
        assert!(x.excluded("docs/a/b.md"));
        assert!(!x.excluded("src/target.rs"));
    }

    #[test]
    fn star_stays_in_one_component_and_double_star_crosses() {
        let x = p(&["*.log", "assets/**/*.tmp"]);
        assert!(x.excluded("a.log"));
        assert!(!x.excluded("sub/a.log"));
        assert!(x.excluded("assets/x.tmp"));
        assert!(x.excluded("assets/a/b/x.tmp"));
        assert!(!x.excluded("assets/x.txt"));
    }

    #[test]
    fn the_last_matching_pattern_wins() {
        let x = p(&["*.md", "!README.md"]);
        assert!(x.excluded("CHANGES.md"));
        assert!(!x.excluded("README.md"));
        let y = p(&["!README.md", "*.md"]);
        assert!(y.excluded("README.md"));
    }

    #[test]
    fn leading_slash_and_dots_are_cleaned() {
        let x = p(&["/build/./out/"]);
        assert!(x.excluded("build/out/x"));
    }

    #[test]
    fn kilnignore_files_skip_comments_and_name_bad_lines() {
        let x = Patterns::from_file("# comment\n\n*.o\n").expect("valid");
        assert!(x.excluded("a.o"));
        let err = Patterns::from_file("ok\n\n[z-a\n").expect_err("bad range");
        assert_eq!(err.0, 3);
    }
}
