//! The base under an image's own layers: distroless layers from pinned Debian packages, the
//! layers of an OCI layout, and entries moved to where the base's symlinks point.

use super::layers::layer;
use super::{Placed, Resolver};
use crate::baseview::BaseView;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::inputs::debian::Flavour;
use crate::oci::platform::Platform;
use crate::plan::layering::{Unit, Volatility, reason};
use crate::plan::{ConfigPlan, EntryKind, LayerPlan};
use crate::recipe::{Base, Compression, ImageSpec};
use miette::SourceSpan;
use std::path::Path;

impl Resolver<'_> {
    /// The base's layers for one platform (and what its configuration brings).
    pub(super) fn base_layers(
        &mut self,
        spec: &ImageSpec,
        platform: Platform,
        config: &mut ConfigPlan,
        compression: Compression,
        epoch: u64,
    ) -> (Vec<LayerPlan>, BaseView) {
        let span = spec.base.span;
        match &spec.base.value {
            Base::Scratch => (Vec::new(), BaseView::default()),
            Base::Distroless(flavour) => self.distroless_base(*flavour, span, platform, config, (compression, epoch)),
            Base::OciLayout { path, tag } => self.layout_base(spec, (path.as_str(), tag.as_deref()), platform, config),
            Base::Registry(r) => self.registry_base(spec, r, platform, config),
        }
    }

    /// A distroless base, built from the packages kiln.lock pins.
    fn distroless_base(
        &mut self,
        flavour: Flavour,
        span: SourceSpan,
        platform: Platform,
        config: &mut ConfigPlan,
        (compression, epoch): (Compression, u64),
    ) -> (Vec<LayerPlan>, BaseView) {
        let Some(inputs) = self.debian else {
            let p = Problem::new(
                Code::PlanMissingLock,
                span,
                format!("{} needs pinned Debian packages, and there is no kiln.lock", flavour.name()),
            )
            .label("needs kiln.lock")
            .help("run `kiln lock` beside the recipe (it resolves and pins the packages), then build again");
            self.once("missing_lock".into(), span, p);
            return (Vec::new(), BaseView::default());
        };
        match crate::base::distroless_layers(flavour, platform, inputs) {
            Ok(base) => {
                crate::base::distroless_config(config);
                let layers: Vec<LayerPlan> = base
                    .into_iter()
                    .map(|b| {
                        let unit = Unit {
                            reason: reason(&b.key),
                            key: b.key,
                            volatility: Volatility::Base,
                            name: b.name,
                            created_by: b.created_by,
                            entries: b.entries,
                        };
                        layer(unit, compression, epoch)
                    })
                    .collect();
                let view = BaseView::from_entries(layers.iter().map(|l| l.entries.as_slice()));
                (layers, view)
            }
            Err(e) => {
                let p = Problem::new(
                    Code::PlanStaleLock,
                    span,
                    format!("kiln.lock does not cover {} for {platform}: {e}", flavour.name()),
                )
                .label("not in kiln.lock")
                .help("run `kiln lock` again: the recipe asks for packages the lock does not pin");
                self.once(format!("stale:{e}"), span, p);
                (Vec::new(), BaseView::default())
            }
        }
    }

    /// A base taken from an OCI layout beside the recipe: its layers as they are, its
    /// configuration inherited.
    fn layout_base(
        &mut self,
        spec: &ImageSpec,
        (path, tag): (&str, Option<&str>),
        platform: Platform,
        config: &mut ConfigPlan,
    ) -> (Vec<LayerPlan>, BaseView) {
        let dir = self.root.join(path);
        let found = crate::base::from_layout(&dir, path, tag, platform);
        self.prebuilt_base(spec, found, &dir, config)
    }

    /// A base pulled from a registry by digest (the fetch step put it in kiln's cache): its
    /// layers as they are, its configuration inherited.
    fn registry_base(
        &mut self,
        spec: &ImageSpec,
        r: &str,
        platform: Platform,
        config: &mut ConfigPlan,
    ) -> (Vec<LayerPlan>, BaseView) {
        let span = spec.base.span;
        let pinned = match crate::oci::reference::Reference::parse(r) {
            Ok(reference) if reference.digest.is_some() => reference,
            Ok(reference) => match self.pinned_bases.get(r).and_then(|d| d.parse().ok()) {
                Some(digest) => reference.at(&digest),
                None => {
                    let p = Problem::new(Code::PlanRegistryBase, span, format!("the base `{r}` names a tag kiln.lock does not pin"))
                        .label("a base by tag")
                        .help("run `kiln lock` to pin the digest the tag names now (builds never follow a tag by themselves), or write base \"HOST/REPOSITORY@sha256:…\"");
                    self.once(format!("registry:{r}"), span, p);
                    return (Vec::new(), BaseView::default());
                }
            },
            Err(e) => {
                let p = Problem::new(Code::PlanRegistryBase, span, e.to_string()).label("this base");
                self.once(format!("registry:{r}"), span, p);
                return (Vec::new(), BaseView::default());
            }
        };
        let cas = crate::store::cas::registry_cache(self.cache_dir.as_deref().unwrap_or(Path::new("")));
        let found = crate::base::pulled_top(&cas, &pinned)
            .and_then(|top| crate::base::from_registry(&cas, top, &pinned.to_string(), platform));
        self.prebuilt_base(spec, found, &cas, config)
    }

    /// The layers and view of a base read from a layout or the registry cache `dir`.
    fn prebuilt_base(
        &mut self,
        spec: &ImageSpec,
        found: Result<crate::base::LayoutBase, String>,
        dir: &Path,
        config: &mut ConfigPlan,
    ) -> (Vec<LayerPlan>, BaseView) {
        let span = spec.base.span;
        let found = found.and_then(|b| BaseView::from_layers(dir, &b.layers).map(|v| (b, v)));
        match found {
            Ok((base, view)) => {
                crate::base::inherit(config, &base.config, &spec.env, spec.entrypoint.is_some());
                let layers = base
                    .layers
                    .into_iter()
                    .map(|p| LayerPlan {
                        id: crate::oci::digest::sha256_hex(format!("prebuilt {}", p.digest).as_bytes()),
                        key: format!("base {}", p.digest),
                        reason: reason(&format!("base {}", p.digest)),
                        volatility: Volatility::Base,
                        name: format!("base layer {}", p.digest.short_hex()),
                        created_by: p.created_by.clone(),
                        entries: Vec::new(),
                        prebuilt: Some(p),
                    })
                    .collect();
                (layers, view)
            }
            Err(e) => {
                let p =
                    Problem::new(Code::PlanBaseLayout, span, format!("cannot use the base: {e}")).label("this base");
                self.once(format!("layout:{e}"), span, p);
                (Vec::new(), BaseView::default())
            }
        }
    }

    /// Moves entries below a base symlink to where the link points (a file at `/bin/tool` on a
    /// base whose `/bin` links to `usr/bin` goes to `/usr/bin/tool`), so the base's links stay
    /// links. A directory entry follows a link at its own path too.
    pub(super) fn follow_base_links(&mut self, spec: &ImageSpec, view: &BaseView, placed: &mut [(usize, Placed)]) {
        if view.is_empty() {
            return;
        }
        for (i, p) in placed.iter_mut() {
            for e in &mut p.entries {
                let dir = e.kind == EntryKind::Dir;
                match view.resolve(&e.path, dir) {
                    Ok(r) if dir && r != "/" => e.path = format!("{r}/"),
                    Ok(r) if !dir => e.path = r,
                    Ok(_) => {}
                    Err(msg) => {
                        let span = spec.contents[*i].dest_span();
                        let problem = Problem::new(Code::PlanBaseSymlink, span, msg).label("writes below this path");
                        self.once(format!("links:{}", e.path), span, problem);
                    }
                }
            }
        }
    }
}
