//! Target platforms kiln builds for.
//!
//! kiln supports exactly the platforms it can cross-build for without emulation. Keeping the
//! list closed lets the recipe reject a typo (`linux/amd46`) with a precise error instead of
//! producing an image nobody can run.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One OCI platform: `os/architecture[/variant]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "linux/amd64")]
    LinuxAmd64,
    #[serde(rename = "linux/arm64")]
    LinuxArm64,
    #[serde(rename = "linux/arm/v7")]
    LinuxArmV7,
}

impl Platform {
    /// Every supported platform, in the order kiln lists them.
    pub const ALL: [Platform; 3] = [Platform::LinuxAmd64, Platform::LinuxArm64, Platform::LinuxArmV7];

    /// Parses `linux/amd64`, `linux/arm64` (also `linux/arm64/v8`) and `linux/arm/v7`.
    pub fn parse(s: &str) -> Option<Platform> {
        match s {
            "linux/amd64" => Some(Platform::LinuxAmd64),
            "linux/arm64" | "linux/arm64/v8" => Some(Platform::LinuxArm64),
            "linux/arm/v7" => Some(Platform::LinuxArmV7),
            _ => None,
        }
    }

    /// The platform of the machine kiln runs on (amd64 where it is none of the three).
    pub fn host() -> Platform {
        match std::env::consts::ARCH {
            "aarch64" => Platform::LinuxArm64,
            "arm" => Platform::LinuxArmV7,
            _ => Platform::LinuxAmd64,
        }
    }

    pub fn os(self) -> &'static str {
        "linux"
    }

    /// The OCI / Go architecture name.
    pub fn arch(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "amd64",
            Platform::LinuxArm64 => "arm64",
            Platform::LinuxArmV7 => "arm",
        }
    }

    pub fn variant(self) -> Option<&'static str> {
        match self {
            Platform::LinuxArmV7 => Some("v7"),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "linux/amd64",
            Platform::LinuxArm64 => "linux/arm64",
            Platform::LinuxArmV7 => "linux/arm/v7",
        }
    }

    /// Replaces `{os}`, `{arch}` and `{variant}` in a recipe path.
    pub fn expand(self, template: &str) -> String {
        template
            .replace("{os}", self.os())
            .replace("{arch}", self.arch())
            .replace("{variant}", self.variant().unwrap_or(""))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when a path template names a per-platform file.
pub fn has_placeholder(template: &str) -> bool {
    ["{os}", "{arch}", "{variant}"].iter().any(|p| template.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_rejects_unknown() {
        for p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
        assert_eq!(Platform::parse("linux/arm64/v8"), Some(Platform::LinuxArm64));
        assert_eq!(Platform::parse("linux/amd46"), None);
        assert_eq!(Platform::parse("windows/amd64"), None);
    }

    #[test]
    fn expand_placeholders() {
        assert_eq!(Platform::LinuxArmV7.expand("dist/{os}-{arch}{variant}/app"), "dist/linux-armv7/app");
        assert_eq!(Platform::LinuxAmd64.expand("dist/{arch}{variant}/app"), "dist/amd64/app");
        assert!(has_placeholder("a/{arch}"));
        assert!(!has_placeholder("a/b"));
    }
}
