//! The flags that raise the limits on hostile input (see `config::limits`).

use crate::config::limits::{Limits, parse_size};
use crate::exit;

/// Limit flags shared by the commands that read packages and YAML files.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LimitFlags {
    /// Largest package file (default 256M).
    #[arg(long, value_name = "SIZE")]
    pub max_package_size: Option<String>,
    /// Most entries in a ZIP package (default 10000).
    #[arg(long, value_name = "N")]
    pub max_entries: Option<usize>,
    /// Largest ZIP entry once decompressed (default 64M).
    #[arg(long, value_name = "SIZE")]
    pub max_entry_size: Option<String>,
    /// Largest sum of the ZIP entries once decompressed (default 512M).
    #[arg(long, value_name = "SIZE")]
    pub max_total_size: Option<String>,
    /// Highest decompressed-to-compressed ratio of a ZIP entry over 1M (default 100).
    #[arg(long, value_name = "N")]
    pub max_ratio: Option<u64>,
    /// Largest YAML file (default 8M).
    #[arg(long, value_name = "SIZE")]
    pub max_yaml_size: Option<String>,
    /// Deepest YAML nesting (default 64, at most 128).
    #[arg(long, value_name = "N")]
    pub max_yaml_depth: Option<usize>,
    /// Most YAML nodes once aliases are expanded (default 1000000).
    #[arg(long, value_name = "N")]
    pub max_yaml_nodes: Option<usize>,
}

impl LimitFlags {
    /// The limits: the defaults, with the flags given.
    pub fn limits(&self) -> Result<Limits, u8> {
        let size = |flag: &str, v: &Option<String>, default: u64| -> Result<u64, u8> {
            v.as_deref().map_or(Ok(default), |s| {
                parse_size(s).map_err(|e| {
                    crate::errln!("error: --{flag}: {e}");
                    exit::BAD_INPUT
                })
            })
        };
        let d = Limits::default();
        let yaml_bytes = size(
            "max-yaml-size",
            &self.max_yaml_size,
            d.yaml.max_bytes as u64,
        )?;
        Ok(Limits {
            max_package_bytes: size(
                "max-package-size",
                &self.max_package_size,
                d.max_package_bytes,
            )?,
            max_entries: self.max_entries.unwrap_or(d.max_entries),
            max_entry_bytes: size("max-entry-size", &self.max_entry_size, d.max_entry_bytes)?,
            max_total_bytes: size("max-total-size", &self.max_total_size, d.max_total_bytes)?,
            max_ratio: self.max_ratio.unwrap_or(d.max_ratio),
            yaml: crate::yaml::YamlLimits {
                max_bytes: usize::try_from(yaml_bytes).unwrap_or(usize::MAX),
                max_depth: self.max_yaml_depth.unwrap_or(d.yaml.max_depth),
                max_nodes: self.max_yaml_nodes.unwrap_or(d.yaml.max_nodes),
            },
        })
    }
}
