//! infermon's configuration.
//!
//! Layers, lowest to highest precedence: built-in defaults → TOML file → environment
//! (`INFERMON_*`) → command-line flags. The file is parsed into a raw struct that rejects
//! unknown keys, then every layer is resolved into validated [`Settings`]; a bad value is an
//! error naming the key, the value and what was expected. Nothing is silently defaulted.
//!
//! ```
//! let raw = infermon_config::parse_file_text("[agent]\ninterval = \"5s\"\n", "inline").unwrap();
//! let s = infermon_config::resolve(raw, &infermon_config::Overrides::default(), &|_| None).unwrap();
//! assert_eq!(s.interval.as_secs(), 5);
//! ```
#![deny(missing_docs)]

mod duration;
mod error;
mod hosts;
mod hub;
mod limits;
mod paths;
mod raw;
mod remote;
mod resolve;

pub use duration::parse_duration;
pub use error::ConfigError;
pub use hosts::check_allowed_host;
pub use hub::HubSpec;
pub use limits::Limits;
pub use paths::{default_config_paths, default_data_dir};
pub use raw::{parse_file_text, RawConfig};
pub use remote::{is_dns_label, RemoteAuth, RemoteWriteSpec};
pub use resolve::{
    parse_slo, resolve, AlertSpec, EngineSpec, Overrides, ProxySpec, RequestSettings, Settings,
    SloSpec, ENGINE_KINDS, SAMPLE_CONFIG,
};

/// Loads the config file (the given path, else the first default path that exists), then
/// applies the environment and `overrides`.
pub fn load(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Settings, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    let raw = match path {
        Some(p) => raw::read_file(p)?,
        None => match default_config_paths(&env).into_iter().find(|p| p.is_file()) {
            Some(p) => raw::read_file(&p)?,
            None => RawConfig::default(),
        },
    };
    resolve(raw, overrides, &env)
}
