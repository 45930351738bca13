//! `[hub]`: the infermon hub this node pushes every sample to (`--hub`, `--hub-token`,
//! `--hub-ca`).

use std::path::PathBuf;

use crate::raw::RawConfig;
use crate::remote::{check_pending, read_secret, value, DEFAULT_MAX_PENDING};
use crate::ConfigError;

/// The hub the agent pushes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpec {
    /// The hub's base URL, e.g. `https://hub:9465`.
    pub url: String,
    /// The hub's join token (asked once for this node's own token).
    pub join_token: String,
    /// Samples kept while the hub is away (default 50 000: 27.8 h at 2 s).
    pub max_pending: usize,
    /// Catch-up pace after an outage, samples per second (default 500).
    pub max_samples_per_second: u32,
    /// Certificate authorities (a PEM file) trusted besides the system's, for a hub whose
    /// certificate a private CA signed (`--hub-ca`, `[hub] ca`).
    pub ca: Option<PathBuf>,
    /// Where the hub's routing proxy reaches this node's OpenAI/Ollama API (its infermon
    /// proxy or engine), sent with every sample (`--advertise-url`, `[hub] advertise_url`).
    pub advertise_url: Option<String>,
}

/// The hub from flags, environment (`INFERMON_HUB_URL`, `INFERMON_HUB_TOKEN`) or `[hub]`,
/// in that order; `None` when no URL is given anywhere.
pub fn hub(
    raw: &RawConfig,
    flag_url: Option<&String>,
    flag_token: Option<&String>,
    flag_ca: Option<&String>,
    flag_advertise: Option<&String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<HubSpec>, ConfigError> {
    let h = &raw.hub;
    let url = flag_url
        .map(|v| (v.clone(), "flag", "--hub"))
        .or_else(|| env("INFERMON_HUB_URL").map(|v| (v, "environment", "INFERMON_HUB_URL")))
        .or_else(|| h.url.clone().map(|v| (v, "file", "hub.url")));
    let Some((url, layer, key)) = url else {
        return Ok(None);
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|r| r.split('/').next().is_some_and(|a| !a.is_empty()))
        && !url.contains(char::is_whitespace);
    if !ok {
        return Err(value(
            key.to_string(),
            url,
            layer,
            "the hub's base URL, e.g. https://hub:9465 (or http:// on a private network)",
        ));
    }
    let ca = match flag_ca {
        Some(c) => crate::remote::check_ca("--hub-ca", &url, Some(c))?,
        None => crate::remote::check_ca("hub.ca", &url, h.ca.as_ref())?,
    };
    let advertise = flag_advertise
        .map(|v| (v.clone(), "flag", "--advertise-url"))
        .or_else(|| {
            h.advertise_url
                .clone()
                .map(|v| (v, "file", "hub.advertise_url"))
        });
    let advertise_url = match advertise {
        None => None,
        Some((v, layer, key)) => match infermon_model::names::endpoint_problem(&v) {
            None => Some(v.trim_end_matches('/').to_string()),
            Some(why) => {
                return Err(value(
                    key.to_string(),
                    v,
                    layer,
                    &format!(
                        "the base URL where the hub reaches this node's OpenAI API, e.g. \
                         http://10.0.0.5:8081 (this one is {why})"
                    ),
                ))
            }
        },
    };
    let file_token = match (&h.join_token, &h.join_token_file) {
        (Some(_), Some(_)) => {
            return Err(value(
                "hub.join_token".into(),
                "(and join_token_file)".into(),
                "file",
                "one of join_token or join_token_file",
            ))
        }
        (Some(t), None) => Some(t.clone()),
        (None, Some(p)) => Some(read_secret("hub.join_token_file", p)?),
        (None, None) => None,
    };
    let join_token = flag_token
        .cloned()
        .or_else(|| env("INFERMON_HUB_TOKEN"))
        .or(file_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            value(
                "--hub-token".into(),
                String::new(),
                "flag",
                "the hub's join token with --hub (--hub-token, INFERMON_HUB_TOKEN, or \
                 join_token / join_token_file under [hub])",
            )
        })?;
    let max_pending = check_pending("hub.max_pending", h.max_pending)?;
    let rate = h.max_samples_per_second.unwrap_or(500);
    if !(1..=100_000).contains(&rate) {
        return Err(value(
            "hub.max_samples_per_second".into(),
            rate.to_string(),
            "file",
            "a number from 1 to 100000",
        ));
    }
    Ok(Some(HubSpec {
        advertise_url,
        ca,
        url: url.trim_end_matches('/').to_string(),
        join_token,
        max_pending: max_pending.unwrap_or(DEFAULT_MAX_PENDING),
        max_samples_per_second: u32::try_from(rate).unwrap_or(500),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(text: &str) -> RawConfig {
        crate::parse_file_text(text, "t.toml").unwrap()
    }

    #[test]
    fn flags_env_and_file() {
        let none = |_: &str| None;
        assert_eq!(hub(&raw(""), None, None, None, None, &none).unwrap(), None);
        let u = "http://hub:9465/".to_string();
        let t = "s3cret".to_string();
        let h = hub(&raw(""), Some(&u), Some(&t), None, None, &none)
            .unwrap()
            .unwrap();
        assert_eq!(h.url, "http://hub:9465");
        assert_eq!(h.join_token, "s3cret");
        assert_eq!(h.max_pending, DEFAULT_MAX_PENDING);
        let f = raw("[hub]\nurl = \"http://h:1\"\njoin_token = \"x\"\nmax_pending = 1000\n");
        let h = hub(&f, None, None, None, None, &none).unwrap().unwrap();
        assert_eq!((h.url.as_str(), h.max_pending), ("http://h:1", 1000));
        let env = |k: &str| (k == "INFERMON_HUB_TOKEN").then(|| "e".to_string());
        assert_eq!(
            hub(&f, None, None, None, None, &env)
                .unwrap()
                .unwrap()
                .join_token,
            "e"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let none = |_: &str| None;
        let u = "ftp://hub:9465".to_string();
        let e = hub(&raw(""), Some(&u), Some(&"t".into()), None, None, &none).unwrap_err();
        assert!(e.to_string().contains("ftp://hub:9465"), "{e}");
        let u = "https:///x".to_string();
        let e = hub(&raw(""), Some(&u), Some(&"t".into()), None, None, &none).unwrap_err();
        assert!(e.to_string().contains("https:///x"), "{e}");
        let u = "https://hub:9465".to_string();
        let h = hub(&raw(""), Some(&u), Some(&"t".into()), None, None, &none)
            .unwrap()
            .unwrap();
        assert_eq!((h.url.as_str(), h.ca), ("https://hub:9465", None));
        let ca = "/nonexistent/ca.pem".to_string();
        let e = hub(
            &raw(""),
            Some(&u),
            Some(&"t".into()),
            Some(&ca),
            None,
            &none,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("--hub-ca") && e.to_string().contains(&ca),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "x").unwrap();
        let ca = file.display().to_string();
        let h = hub(
            &raw(""),
            Some(&u),
            Some(&"t".into()),
            Some(&ca),
            None,
            &none,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.ca.as_deref(), Some(file.as_path()));
        let plain = "http://hub:9465".to_string();
        let e = hub(
            &raw(""),
            Some(&plain),
            Some(&"t".into()),
            Some(&ca),
            None,
            &none,
        )
        .unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        let adv = "http://10.0.0.5:8081/".to_string();
        let h = hub(
            &raw(""),
            Some(&plain),
            Some(&"t".into()),
            None,
            Some(&adv),
            &none,
        );
        assert_eq!(
            h.unwrap().unwrap().advertise_url.as_deref(),
            Some("http://10.0.0.5:8081")
        );
        let adv = "10.0.0.5:8081".to_string();
        let e = hub(
            &raw(""),
            Some(&plain),
            Some(&"t".into()),
            None,
            Some(&adv),
            &none,
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("--advertise-url") && e.contains("not http"),
            "{e}"
        );
        let u = "http://hub:9465".to_string();
        let e = hub(&raw(""), Some(&u), None, None, None, &none).unwrap_err();
        assert!(e.to_string().contains("join token"), "{e}");
        let f = raw("[hub]\nurl = \"http://h:1\"\njoin_token = \"x\"\nmax_pending = 5\n");
        let e = hub(&f, None, None, None, None, &none).unwrap_err();
        assert!(e.to_string().contains("hub.max_pending"), "{e}");
    }
}
