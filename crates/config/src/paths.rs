use std::path::PathBuf;

/// Config files looked for when none is given: `$XDG_CONFIG_HOME/infermon/config.toml`
/// (or `~/.config/infermon/config.toml`), then `/etc/infermon/config.toml`.
pub fn default_config_paths(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(x) = env("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(x).join("infermon/config.toml"));
    } else if let Some(h) = env("HOME").filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(h).join(".config/infermon/config.toml"));
    }
    v.push(PathBuf::from("/etc/infermon/config.toml"));
    v
}

/// Data directory: `$XDG_DATA_HOME/infermon`, else `~/.local/share/infermon`, else (a service
/// without a home) `/var/lib/infermon`.
pub fn default_data_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(x) = env("XDG_DATA_HOME").filter(|s| !s.is_empty()) {
        PathBuf::from(x).join("infermon")
    } else if let Some(h) = env("HOME").filter(|s| !s.is_empty()) {
        PathBuf::from(h).join(".local/share/infermon")
    } else {
        PathBuf::from("/var/lib/infermon")
    }
}
