//! The user an image runs as: the recipe's `user`, else the base's, else kiln's non-root
//! default. A user or group *name* must exist in the image's `/etc/passwd` or `/etc/group`
//! (the recipe's own, else the base's): on `scratch` there is none, and the image would only
//! fail when it starts.

use super::{Placed, Resolver};
use crate::baseview::BaseView;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::plan::{ConfigPlan, DEFAULT_USER, EntryKind, UserSource};
use crate::recipe::ImageSpec;
use std::io::Read;

/// `root` means uid or gid 0, with or without a passwd file to say so.
pub(super) fn normalise(user: &str) -> String {
    let part = |p: &str| if p == "root" { "0".to_string() } else { p.to_string() };
    match user.split_once(':') {
        Some((u, g)) => format!("{}:{}", part(u), part(g)),
        None => part(user),
    }
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl Resolver<'_> {
    /// The text of `path` as the recipe writes it (inline or from a source file), if it does.
    fn recipe_file(&self, placed: &[(usize, Placed)], path: &str) -> Option<String> {
        let e =
            placed.iter().flat_map(|(_, p)| p.entries.iter()).find(|e| e.path == path && e.kind == EntryKind::File)?;
        if let Some(c) = &e.content {
            return Some(c.clone());
        }
        let file = std::fs::File::open(self.root.join(e.source.as_ref()?)).ok()?;
        let mut text = String::new();
        file.take(1 << 20).read_to_string(&mut text).ok()?;
        Some(text)
    }

    /// Settles `config.user` and where it came from; checks names the recipe gives.
    pub(super) fn settle_user(
        &mut self,
        spec: &ImageSpec,
        view: &BaseView,
        placed: &[(usize, Placed)],
        config: &mut ConfigPlan,
    ) {
        config.user_from = match (&spec.user, &config.user) {
            (Some(_), _) => UserSource::Recipe,
            (None, Some(u)) if !u.is_empty() => UserSource::Base,
            (None, _) => {
                config.user = Some(DEFAULT_USER.to_string());
                UserSource::Default
            }
        };
        if config.user_from != UserSource::Recipe {
            return;
        }
        let Some(user) = config.user.clone() else { return };
        let (name, group) = match user.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (user.clone(), None),
        };
        let checks =
            [("/etc/passwd", Some(name), view.passwd.as_deref()), ("/etc/group", group, view.group.as_deref())];
        for (file, wanted, base) in checks {
            let Some(wanted) = wanted.filter(|w| !numeric(w)) else { continue };
            let own = self.recipe_file(placed, file);
            if BaseView::knows(own.as_deref().or(base), &wanted) {
                continue;
            }
            let what = if file == "/etc/passwd" { "user" } else { "group" };
            let has = own.is_some() || base.is_some();
            let msg = if has {
                format!("image `{}` runs as {what} `{wanted}`, which its {file} does not name", spec.name.value)
            } else {
                format!("image `{}` runs as {what} `{wanted}`, and it has no {file} to name it", spec.name.value)
            };
            let span = spec.user_span.unwrap_or(spec.span);
            let p = Problem::new(Code::RecipeUnknownUser, span, msg)
                .label(format!("no such {what} in the image"))
                .help(format!(
                    "give the {what} as a number (`user 65532` or `user \"65532:65532\"`), or add it to {file}"
                ));
            self.once(format!("user:{}:{wanted}", spec.name.value), span, p);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_uid_zero() {
        assert_eq!(super::normalise("root"), "0");
        assert_eq!(super::normalise("root:root"), "0:0");
        assert_eq!(super::normalise("app:root"), "app:0");
        assert_eq!(super::normalise("65532"), "65532");
    }
}
