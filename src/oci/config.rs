//! The runtime configuration of an image as the plan holds it, and kiln's defaults for it.
//! Shared vocabulary: the plan holds it, and the base stage fills it from a base image's
//! config without depending on the plan.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `PATH` an image gets when neither its recipe nor its base sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime configuration written to the image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPlan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Where `user` came from: the recipe, the base, or kiln's non-root default.
    pub user_from: UserSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Who decided the user an image runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    /// The recipe's `user`.
    Recipe,
    /// The base image's config.
    Base,
    /// Neither said: kiln's default, [`DEFAULT_USER`], as distroless's `nonroot`.
    #[default]
    Default,
}

/// The user an image runs as when neither its recipe nor its base says: not root.
pub const DEFAULT_USER: &str = "65532:65532";

impl UserSource {
    pub fn describe(self) -> &'static str {
        match self {
            UserSource::Recipe => "set by the recipe",
            UserSource::Base => "from the base image",
            UserSource::Default => "kiln's default: not root; `user \"root\"` opts out",
        }
    }
}
