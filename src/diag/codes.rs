//! The stable error codes: every `kiln::stage::name` kiln reports, in one enum (problems
//! carry a [`Code`]; the typed errors' `#[diagnostic(code(…))]` attributes name the same codes). Each is
//! documented in `book/src/errors.md`, and a test checks that the book, this list and the
//! codes used in the source are the same set.

use std::fmt;

macro_rules! codes {
    ($($variant:ident = $code:literal,)*) => {
        /// A stable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the order of this list.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            /// The code as kiln prints it: `kiln::recipe::syntax`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }
        }
    };
}

codes! {
    AttestKey = "kiln::attest::key",
    BuildOutputNotLayout = "kiln::build::output_not_layout",
    BuildSourceChanged = "kiln::build::source_changed",
    CliDuration = "kiln::cli::duration",
    CliImage = "kiln::cli::image",
    CliOutput = "kiln::cli::output",
    CliPlanFile = "kiln::cli::plan_file",
    CliShard = "kiln::cli::shard",
    CliCompression = "kiln::cli::compression",
    CliPlatform = "kiln::cli::platform",
    CliRecipeUnreadable = "kiln::cli::recipe_unreadable",
    CliSize = "kiln::cli::size",
    CliSourceDateEpoch = "kiln::cli::source_date_epoch",
    Debian = "kiln::debian",
    FetchIntegrity = "kiln::fetch::integrity",
    FetchNetwork = "kiln::fetch::network",
    InitCi = "kiln::init::ci",
    InitCiExists = "kiln::init::ci_exists",
    InitExists = "kiln::init::exists",
    InitNoProject = "kiln::init::no_project",
    InitTemplate = "kiln::init::template",
    Io = "kiln::io",
    LayoutInvalid = "kiln::layout::invalid",
    LayoutTooLarge = "kiln::layout::too_large",
    PlanBaseLayout = "kiln::plan::base_layout",
    PlanBaseSymlink = "kiln::plan::base_symlink",
    PlanCargoMetadata = "kiln::plan::cargo_metadata",
    PlanDuplicateDestination = "kiln::plan::duplicate_destination",
    PlanExcludedSource = "kiln::plan::excluded_source",
    PlanKilnignore = "kiln::plan::kilnignore",
    PlanLayerBudget = "kiln::plan::layer_budget",
    PlanMissingLock = "kiln::plan::missing_lock",
    PlanMissingGoMod = "kiln::plan::missing_go_mod",
    PlanMissingLockfile = "kiln::plan::missing_lockfile",
    PlanMissingManifest = "kiln::plan::missing_manifest",
    PlanMissingSource = "kiln::plan::missing_source",
    PlanNoSources = "kiln::plan::no_sources",
    PlanNonUtf8Name = "kiln::plan::non_utf8_name",
    PlanRegistryBase = "kiln::plan::registry_base",
    PlanSpecialFile = "kiln::plan::special_file",
    PlanStale = "kiln::plan::stale",
    PlanStaleLock = "kiln::plan::stale_lock",
    PlanUnknownBin = "kiln::plan::unknown_bin",
    PlanUnknownPackage = "kiln::plan::unknown_package",
    PlanUnreadableSource = "kiln::plan::unreadable_source",
    RecipeArguments = "kiln::recipe::arguments",
    RecipeBase = "kiln::recipe::base",
    RecipeCFlag = "kiln::recipe::c_flag",
    RecipeChildren = "kiln::recipe::children",
    RecipeCompression = "kiln::recipe::compression",
    RecipeControlCharacter = "kiln::recipe::control_character",
    RecipeDuplicateImage = "kiln::recipe::duplicate_image",
    RecipeDuplicateNode = "kiln::recipe::duplicate_node",
    RecipeDuplicatePlatform = "kiln::recipe::duplicate_platform",
    RecipeEnv = "kiln::recipe::env",
    RecipeExcludePattern = "kiln::recipe::exclude_pattern",
    RecipeFileDest = "kiln::recipe::file_dest",
    RecipeGlob = "kiln::recipe::glob",
    RecipeGoFlag = "kiln::recipe::go_flag",
    RecipeImageName = "kiln::recipe::image_name",
    RecipeLineBreak = "kiln::recipe::line_break",
    RecipeMirror = "kiln::recipe::mirror",
    RecipeMissingNode = "kiln::recipe::missing_node",
    RecipeMode = "kiln::recipe::mode",
    RecipePathEscape = "kiln::recipe::path_escape",
    RecipePlatform = "kiln::recipe::platform",
    RecipePort = "kiln::recipe::port",
    RecipeProfile = "kiln::recipe::profile",
    RecipeProperty = "kiln::recipe::property",
    RecipeRange = "kiln::recipe::range",
    RecipeRelativePath = "kiln::recipe::relative_path",
    RecipeReservedAnnotation = "kiln::recipe::reserved_annotation",
    RecipeSchema = "kiln::recipe::schema",
    RecipeSource = "kiln::recipe::source",
    RecipeSourceOutside = "kiln::recipe::source_outside",
    RecipeSyntax = "kiln::recipe::syntax",
    RecipeTooDeep = "kiln::recipe::too_deep",
    RecipeTooLong = "kiln::recipe::too_long",
    RecipeType = "kiln::recipe::type",
    RecipeUnknownNode = "kiln::recipe::unknown_node",
    RecipeUnknownUser = "kiln::recipe::unknown_user",
    RecipeVolatility = "kiln::recipe::volatility",
    MergeBlob = "kiln::merge::blob",
    MergeNotAShard = "kiln::merge::not_a_shard",
    MergeOtherPlan = "kiln::merge::other_plan",
    MergeShards = "kiln::merge::shards",
    RegistryAuth = "kiln::registry::auth",
    RegistryCredentials = "kiln::registry::credentials",
    RegistryProtocol = "kiln::registry::protocol",
    RegistryReference = "kiln::registry::reference",
    RegistryRefused = "kiln::registry::refused",
    RegistryUnreachable = "kiln::registry::unreachable",
    ShardUnknown = "kiln::shard::unknown",
    StoreLocked = "kiln::store::locked",
    ToolchainBinary = "kiln::toolchain::binary",
    ToolchainCompile = "kiln::toolchain::compile",
    ToolchainFetch = "kiln::toolchain::fetch",
    ToolchainMissing = "kiln::toolchain::missing",
    ToolchainMissingGo = "kiln::toolchain::missing_go",
    ToolchainMissingLinker = "kiln::toolchain::missing_linker",
    ToolchainMissingStrip = "kiln::toolchain::missing_strip",
    ToolchainMissingTarget = "kiln::toolchain::missing_target",
    ToolchainMissingZig = "kiln::toolchain::missing_zig",
    ToolchainNotGathered = "kiln::toolchain::not_gathered",
    ToolchainRustc = "kiln::toolchain::rustc",
    ToolchainTriple = "kiln::toolchain::triple",
    ToolchainUndeclaredInput = "kiln::toolchain::undeclared_input",
    UpdateRefused = "kiln::update::refused",
    VerifyRebuild = "kiln::verify::rebuild",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every `kiln::…` code written in `text`.
    fn codes_in(text: &str, set: &mut BTreeSet<String>) {
        let mut rest = text;
        while let Some(i) = rest.find("kiln::") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let code = tail[..end].trim_end_matches(':');
            if code.matches("::").count() >= 1 && !code.ends_with("::") {
                set.insert(code.to_string());
            }
            rest = &tail[end.max(6)..];
        }
    }

    fn source_codes(dir: &Path, set: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                source_codes(&p, set);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("codes.rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                // Codes as most of the source writes them: `Code::RecipeSyntax`.
                for (i, _) in text.match_indices("Code::") {
                    let name: String = text[i + 6..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                    if let Some(c) = Code::ALL.iter().find(|c| format!("{c:?}") == name) {
                        set.insert(c.as_str().to_string());
                    }
                }
                // Codes as the source writes them: quoted, or in a `code(...)` attribute.
                for line in text.lines().filter(|l| l.contains("\"kiln::") || l.contains("code(kiln::")) {
                    let mut found = BTreeSet::new();
                    codes_in(line, &mut found);
                    set.extend(found.into_iter().filter(|c| c.split("::").count() >= 2));
                }
            }
        }
    }

    #[test]
    fn the_enum_the_book_and_the_source_list_the_same_codes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let listed: BTreeSet<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
        assert_eq!(listed.len(), Code::ALL.len(), "a code is listed twice");
        let mut book = BTreeSet::new();
        let errors = std::fs::read_to_string(root.join("book/src/errors.md")).unwrap();
        for (i, _) in errors.match_indices("`kiln::") {
            let code = errors[i + 1..].split('`').next().unwrap_or_default();
            if code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':') {
                book.insert(code.to_string());
            }
        }
        let mut source = BTreeSet::new();
        source_codes(&root.join("src"), &mut source);
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.difference(b).cloned().collect::<Vec<_>>();
        assert!(
            only(&listed, &book).is_empty(),
            "codes book/src/errors.md does not document: {:?}",
            only(&listed, &book)
        );
        assert!(
            only(&book, &listed).is_empty(),
            "codes the book names that kiln does not have: {:?}",
            only(&book, &listed)
        );
        assert!(
            only(&source, &listed).is_empty(),
            "codes the source uses that Code does not list: {:?}",
            only(&source, &listed)
        );
        assert!(only(&listed, &source).is_empty(), "codes nothing reports any more: {:?}", only(&listed, &source));
    }
}
