//! Names and secrets that travel between machines.

/// A DNS label: 1–63 of `[a-z0-9-]`, not starting or ending with `-`. Node names are DNS
/// labels, so they are safe in a URL, a file name, a Prometheus label and a shell.
pub fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Longest base URL a node may advertise.
pub const MAX_ENDPOINT_LEN: usize = 256;

/// A base URL where a node serves an OpenAI/Ollama API to the hub's router: `http://` (the
/// router speaks plain HTTP to nodes, on the fleet's own network), a host, an optional port,
/// nothing after but an optional `/`, at most [`MAX_ENDPOINT_LEN`] bytes, no whitespace,
/// credentials, query or fragment. `None` when it is one, else what is wrong.
pub fn endpoint_problem(url: &str) -> Option<&'static str> {
    if url.len() > MAX_ENDPOINT_LEN {
        return Some("longer than 256 bytes");
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Some("not http:// (the hub's router speaks plain HTTP to nodes)");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Some("no host");
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'))
    {
        return Some("more than a host and port (no path, query, fragment or credentials)");
    }
    None
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{endpoint_problem, is_dns_label};

    #[test]
    fn endpoints_are_a_scheme_host_and_port() {
        for ok in [
            "http://10.0.0.5:8081",
            "http://gpu1.lan/",
            "http://[::1]:8080",
        ] {
            assert_eq!(endpoint_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("10.0.0.5:8081", "not http"),
            ("ftp://h", "not http"),
            ("https://h:1", "not http"),
            ("http://", "no host"),
            ("http://h:1/v1", "more than"),
            ("http://user:pw@h:1", "more than"),
            ("http://h:1?x=1", "more than"),
            ("http://h 1", "more than"),
        ] {
            assert!(
                endpoint_problem(bad).is_some_and(|p| p.contains(why)),
                "{bad}"
            );
        }
        let long = format!("http://{}", "a".repeat(250));
        assert_eq!(endpoint_problem(&long), Some("longer than 256 bytes"));
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("a-1") && is_dns_label(&"a".repeat(63)));
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", "../x", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
