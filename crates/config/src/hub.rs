//! `[hub]`: the infermon hub this node pushes every sample to (`--hub`, `--hub-token`).

use crate::raw::RawConfig;
use crate::remote::{check_pending, read_secret, value, DEFAULT_MAX_PENDING};
use crate::ConfigError;

/// The hub the agent pushes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpec {
    /// The hub's base URL (`http`; this build has no TLS client), e.g. `http://hub:9465`.
    pub url: String,
    /// The hub's join token (asked once for this node's own token).
    pub join_token: String,
    /// Samples kept while the hub is away (default 50 000: 27.8 h at 2 s).
    pub max_pending: usize,
    /// Catch-up pace after an outage, samples per second (default 500).
    pub max_samples_per_second: u32,
}

/// The hub from flags, environment (`INFERMON_HUB_URL`, `INFERMON_HUB_TOKEN`) or `[hub]`,
/// in that order; `None` when no URL is given anywhere.
pub fn hub(
    raw: &RawConfig,
    flag_url: Option<&String>,
    flag_token: Option<&String>,
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
    let ok = url.starts_with("http://")
        && url[7..].split('/').next().is_some_and(|a| !a.is_empty())
        && !url.contains(char::is_whitespace);
    if !ok {
        return Err(value(
            key.to_string(),
            url,
            layer,
            "the hub's http:// base URL, e.g. http://hub:9465 (https needs a build with TLS, \
             which this one is not: reach the hub over a TLS proxy or a private network)",
        ));
    }
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
        assert_eq!(hub(&raw(""), None, None, &none).unwrap(), None);
        let u = "http://hub:9465/".to_string();
        let t = "s3cret".to_string();
        let h = hub(&raw(""), Some(&u), Some(&t), &none).unwrap().unwrap();
        assert_eq!(h.url, "http://hub:9465");
        assert_eq!(h.join_token, "s3cret");
        assert_eq!(h.max_pending, DEFAULT_MAX_PENDING);
        let f = raw("[hub]\nurl = \"http://h:1\"\njoin_token = \"x\"\nmax_pending = 1000\n");
        let h = hub(&f, None, None, &none).unwrap().unwrap();
        assert_eq!((h.url.as_str(), h.max_pending), ("http://h:1", 1000));
        let env = |k: &str| (k == "INFERMON_HUB_TOKEN").then(|| "e".to_string());
        assert_eq!(hub(&f, None, None, &env).unwrap().unwrap().join_token, "e");
    }

    #[test]
    fn bad_values_are_named() {
        let none = |_: &str| None;
        let u = "https://hub:9465".to_string();
        let e = hub(&raw(""), Some(&u), Some(&"t".into()), &none).unwrap_err();
        assert!(e.to_string().contains("https://hub:9465"), "{e}");
        let u = "http://hub:9465".to_string();
        let e = hub(&raw(""), Some(&u), None, &none).unwrap_err();
        assert!(e.to_string().contains("join token"), "{e}");
        let f = raw("[hub]\nurl = \"http://h:1\"\njoin_token = \"x\"\nmax_pending = 5\n");
        let e = hub(&f, None, None, &none).unwrap_err();
        assert!(e.to_string().contains("hub.max_pending"), "{e}");
    }
}
