//! `[agent] allowed_hosts`: host names the API answers to besides loopback names and IP
//! literals (which always pass). Layers add up, like engines: file, then
//! `INFERMON_ALLOWED_HOSTS` (comma-separated), then `--allowed-host` (repeatable).

use crate::{ConfigError, RawConfig};

/// What an allowed host must look like, for error messages.
const EXPECTED: &str = "a host name like inferbox.local or an IP address, without scheme, \
                        port or path (the Host header's port is ignored when matching)";

/// Checks one allowed host and returns it in the form the API compares: lowercase, without a
/// trailing dot, an IPv6 literal without brackets. The error says what was expected.
pub fn check_allowed_host(s: &str) -> Result<String, String> {
    let name = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let unbracketed = name
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(&name);
    if unbracketed.parse::<std::net::IpAddr>().is_ok() {
        return Ok(unbracketed.to_string());
    }
    if is_dns_name(&name) {
        return Ok(name);
    }
    Err(EXPECTED.to_string())
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and hyphens, not starting
/// or ending with a hyphen, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// File, environment and flag values together, checked, in that order, without duplicates.
pub(crate) fn allowed_hosts(
    raw: &RawConfig,
    flags: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut given: Vec<(String, String, &'static str)> = Vec::new();
    for (i, h) in raw.agent.allowed_hosts.iter().enumerate() {
        given.push((format!("agent.allowed_hosts[{i}]"), h.clone(), "file"));
    }
    if let Some(v) = env("INFERMON_ALLOWED_HOSTS").filter(|s| !s.trim().is_empty()) {
        for part in v.split(',').filter(|p| !p.trim().is_empty()) {
            let key = "INFERMON_ALLOWED_HOSTS".to_string();
            given.push((key, part.trim().to_string(), "environment"));
        }
    }
    for h in flags {
        given.push(("--allowed-host".to_string(), h.clone(), "flag"));
    }
    let mut out: Vec<String> = Vec::new();
    for (key, value, layer) in given {
        let host = check_allowed_host(&value).map_err(|expected| ConfigError::Value {
            key,
            value,
            layer,
            expected,
        })?;
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::check_allowed_host;

    #[test]
    fn names() {
        assert_eq!(
            check_allowed_host("InferBox.Local").unwrap(),
            "inferbox.local"
        );
        assert_eq!(check_allowed_host("gpu-01.lan.").unwrap(), "gpu-01.lan");
        assert_eq!(check_allowed_host("[fd00::1]").unwrap(), "fd00::1");
        assert_eq!(check_allowed_host("10.0.0.7").unwrap(), "10.0.0.7");
        for bad in [
            "",
            "http://inferbox.local",
            "inferbox.local:7411",
            "inferbox.local/api",
            "-bad.lan",
            "a..b",
            "*.lan",
            "user@host",
            "in ferbox",
        ] {
            assert!(check_allowed_host(bad).is_err(), "{bad:?} accepted");
        }
    }
}
