//! `[[remote_write]]` receivers and the node's name: where the agent pushes its series with
//! the Prometheus remote write protocol, and the `instance` label they carry.

use std::path::PathBuf;

use std::collections::BTreeMap;

use crate::raw::RawConfig;
use crate::ConfigError;

/// How a receiver authenticates the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAuth {
    /// Nothing.
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// HTTP basic authentication.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
}

/// One receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWriteSpec {
    /// Write URL (`http` or `https`), e.g. `http://prom:9090/api/v1/write`.
    pub url: String,
    /// Authentication (file only: tokens do not belong on a command line).
    pub auth: RemoteAuth,
    /// Extra labels on every series (besides `job="infermon"` and `instance=<node name>`).
    pub labels: Vec<(String, String)>,
    /// Snapshots kept while the receiver is away (default 50 000: 27.8 h at 2 s).
    pub max_pending: usize,
    /// Catch-up pace after an outage, snapshots per second (default 500).
    pub max_samples_per_second: u32,
    /// Certificate authorities (a PEM file) trusted besides the system's, for an https
    /// receiver a private CA signed (file only).
    pub ca: Option<PathBuf>,
}

/// Snapshots a queue holds by default: 27.8 h at 2 s, so a day's outage loses nothing.
pub const DEFAULT_MAX_PENDING: usize = 50_000;

/// The smallest queue accepted (a few minutes at 2 s).
const MIN_PENDING: i64 = 100;
/// The largest (about 3 GB of queue at worst).
const MAX_PENDING: i64 = 2_000_000;

/// A queue cap from the file: `None` when not given, else from [`MIN_PENDING`] to
/// [`MAX_PENDING`].
pub(crate) fn check_pending(key: &str, v: Option<i64>) -> Result<Option<usize>, ConfigError> {
    match v {
        None => Ok(None),
        Some(n) if (MIN_PENDING..=MAX_PENDING).contains(&n) => Ok(usize::try_from(n).ok()),
        Some(n) => Err(value(
            key.to_string(),
            n.to_string(),
            "file",
            &format!("a number of samples from {MIN_PENDING} to {MAX_PENDING}"),
        )),
    }
}

pub(crate) fn value(
    key: String,
    value: String,
    layer: &'static str,
    expected: &str,
) -> ConfigError {
    ConfigError::Value {
        key,
        value,
        layer,
        expected: expected.to_string(),
    }
}

fn check_url(key: &str, url: &str, layer: &'static str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|r| r.split('/').next().is_some_and(|a| !a.is_empty()))
        && !url.contains(char::is_whitespace);
    if ok {
        Ok(url.to_string())
    } else {
        Err(value(
            key.to_string(),
            url.to_string(),
            layer,
            "an http:// or https:// URL with a host, e.g. http://prometheus:9090/api/v1/write",
        ))
    }
}

/// A CA file for an https URL: given only with https, and it must exist (its PEM is read
/// when the sender starts, with an error naming it).
pub(crate) fn check_ca(
    key: &str,
    url: &str,
    ca: Option<&String>,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(ca) = ca else {
        return Ok(None);
    };
    if !url.starts_with("https://") {
        return Err(value(
            key.to_string(),
            ca.clone(),
            "file",
            &format!("no CA with the plain-http URL \"{url}\" (a CA is for an https:// URL)"),
        ));
    }
    let path = PathBuf::from(ca);
    if !path.is_file() {
        return Err(value(
            key.to_string(),
            ca.clone(),
            "file",
            "a readable PEM file of CA certificates",
        ));
    }
    Ok(Some(path))
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved (`__` prefix), not one
/// infermon sets itself.
fn check_label(key: &str, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
        && name != "job"
        && name != "instance";
    if valid {
        Ok(())
    } else {
        Err(value(
            key.to_string(),
            name.to_string(),
            "file",
            "a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __, not job or instance, \
             which infermon sets)",
        ))
    }
}

pub use infermon_model::names::is_dns_label;

pub(crate) fn read_secret(key: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            value(
                key.to_string(),
                path.to_string(),
                "file",
                &format!("a readable file ({e})"),
            )
        })
}

/// The node's name: flag, else `INFERMON_NODE_NAME`, else `[agent] node_name`, else the host
/// name (from `HOSTNAME` or `/etc/hostname`, lowercased, cut at the first dot), else
/// `localhost`. A given name must be a DNS label; a host name that is not one is an error
/// only when remote write needs it.
pub fn node_name(
    raw: &RawConfig,
    flag: Option<&String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let given = flag
        .map(|v| (v.clone(), "flag", "--node-name"))
        .or_else(|| env("INFERMON_NODE_NAME").map(|v| (v, "environment", "INFERMON_NODE_NAME")))
        .or_else(|| {
            raw.agent
                .node_name
                .clone()
                .map(|v| (v, "file", "agent.node_name"))
        });
    if let Some((v, layer, key)) = given {
        return if is_dns_label(&v) {
            Ok(v)
        } else {
            Err(value(
                key.to_string(),
                v,
                layer,
                "a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'",
            ))
        };
    }
    let host = env("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| {
            h.trim()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .filter(|h| !h.is_empty());
    Ok(host.unwrap_or_else(|| "localhost".to_string()))
}

/// The receivers: every `[[remote_write]]` of the file, then `INFERMON_REMOTE_WRITE`
/// (comma-separated URLs), then each `--remote-write URL`; the same URL twice is kept once.
pub fn remote_write(
    raw: &RawConfig,
    flags: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<RemoteWriteSpec>, ConfigError> {
    let mut out: Vec<RemoteWriteSpec> = Vec::new();
    for (i, r) in raw.remote_write.iter().enumerate() {
        let k = |f: &str| format!("remote_write[{i}].{f}");
        let url = check_url(&k("url"), &r.url, "file")?;
        let bearer = match (&r.bearer_token, &r.bearer_token_file) {
            (Some(_), Some(_)) => {
                return Err(value(
                    k("bearer_token"),
                    "(and bearer_token_file)".into(),
                    "file",
                    "one of bearer_token or bearer_token_file",
                ))
            }
            (Some(t), None) => Some(t.clone()),
            (None, Some(p)) => Some(read_secret(&k("bearer_token_file"), p)?),
            (None, None) => None,
        };
        let password = match (&r.basic_auth_password, &r.basic_auth_password_file) {
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret(&k("basic_auth_password_file"), f)?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(value(
                    k("basic_auth_password"),
                    "(and basic_auth_password_file)".into(),
                    "file",
                    "one of basic_auth_password or basic_auth_password_file",
                ))
            }
        };
        let auth = match (bearer, &r.basic_auth_user, password) {
            (None, None, None) => RemoteAuth::None,
            (Some(t), None, None) => RemoteAuth::Bearer(t),
            (None, Some(u), Some(p)) => RemoteAuth::Basic {
                user: u.clone(),
                password: p,
            },
            (None, Some(u), None) => {
                return Err(value(
                    k("basic_auth_user"),
                    u.clone(),
                    "file",
                    "a basic_auth_password or basic_auth_password_file with it",
                ))
            }
            (None, None, Some(_)) => {
                return Err(value(
                    k("basic_auth_password"),
                    "(set)".into(),
                    "file",
                    "a basic_auth_user with it",
                ))
            }
            (Some(_), _, _) => {
                return Err(value(
                    k("bearer_token"),
                    "(and basic auth)".into(),
                    "file",
                    "either a bearer token or basic auth, not both",
                ))
            }
        };
        let labels: BTreeMap<String, String> = r.labels.clone();
        for name in labels.keys() {
            check_label(&k("labels"), name)?;
        }
        let max_pending = check_pending(&k("max_pending"), r.max_pending)?;
        let rate = r.max_samples_per_second.unwrap_or(500);
        if !(1..=100_000).contains(&rate) {
            return Err(value(
                k("max_samples_per_second"),
                rate.to_string(),
                "file",
                "a number from 1 to 100000",
            ));
        }
        let ca = check_ca(&k("ca"), &url, r.ca.as_ref())?;
        out.push(RemoteWriteSpec {
            ca,
            url,
            auth,
            labels: labels.into_iter().collect(),
            max_pending: max_pending.unwrap_or(DEFAULT_MAX_PENDING),
            max_samples_per_second: u32::try_from(rate).unwrap_or(500),
        });
    }
    let from_env = env("INFERMON_REMOTE_WRITE").unwrap_or_default();
    let env_urls = from_env
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|u| check_url("INFERMON_REMOTE_WRITE", u, "environment"));
    let flag_urls = flags
        .iter()
        .map(|u| check_url("--remote-write", u.trim(), "flag"));
    for url in env_urls.chain(flag_urls) {
        let url = url?;
        if !out.iter().any(|s| s.url == url) {
            out.push(RemoteWriteSpec {
                url,
                auth: RemoteAuth::None,
                labels: Vec::new(),
                max_pending: DEFAULT_MAX_PENDING,
                max_samples_per_second: 500,
                ca: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(toml: &str) -> RawConfig {
        toml::from_str(toml).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn file_env_and_flags_add_up_once_per_url() {
        let r = raw(r#"
            [[remote_write]]
            url = "http://prom:9090/api/v1/write"
            bearer_token = "s3cret"
            labels = { site = "office" }
            max_pending = 5000
        "#);
        let env = |k: &str| {
            (k == "INFERMON_REMOTE_WRITE")
                .then(|| "http://vm:8428/api/v1/write, http://prom:9090/api/v1/write".to_string())
        };
        let s = remote_write(&r, &["http://mimir/api/v1/push".to_string()], &env).unwrap();
        let urls: Vec<_> = s.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://prom:9090/api/v1/write",
                "http://vm:8428/api/v1/write",
                "http://mimir/api/v1/push"
            ]
        );
        assert_eq!(s[0].auth, RemoteAuth::Bearer("s3cret".into()));
        assert_eq!(s[0].labels, [("site".to_string(), "office".to_string())]);
        assert_eq!(s[0].max_pending, 5000);
        assert_eq!(s[1].max_pending, DEFAULT_MAX_PENDING);
    }

    #[test]
    fn bad_values_are_named() {
        let e = remote_write(&raw(""), &["prom:9090".to_string()], &no_env).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"prom:9090\" for --remote-write (from flag)"),
            "{e}"
        );
        let e = remote_write(
            &raw("[[remote_write]]\nurl = \"http://p/w\"\nlabels = { instance = \"x\" }"),
            &[],
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("remote_write[0].labels"), "{e}");
        let e = remote_write(
            &raw("[[remote_write]]\nurl = \"http://p/w\"\nmax_pending = 10"),
            &[],
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("from 100 to 2000000"), "{e}");
        let e = remote_write(
            &raw("[[remote_write]]\nurl = \"http://p/w\"\nbasic_auth_user = \"u\""),
            &[],
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("basic_auth_password"), "{e}");
    }

    #[test]
    fn node_name_is_a_dns_label_or_the_host_name() {
        let env = |k: &str| (k == "HOSTNAME").then(|| "GPU-Box1.lan".to_string());
        assert_eq!(node_name(&raw(""), None, &env).unwrap(), "gpu-box1");
        let flag = "edge-7".to_string();
        assert_eq!(node_name(&raw(""), Some(&flag), &env).unwrap(), "edge-7");
        let bad = "Edge_7".to_string();
        let e = node_name(&raw(""), Some(&bad), &env).unwrap_err();
        assert!(e.to_string().contains("a DNS label"), "{e}");
        assert!(!is_dns_label("-a") && !is_dns_label("") && is_dns_label("a-1"));
    }
}
