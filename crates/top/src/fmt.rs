//! Text for figures: every function takes what the snapshot says and returns what is shown.
//! An absent value is [`ABSENT`], never `0`.

/// Shown for a value the agent could not give.
pub const ABSENT: &str = "–";

/// `v` with `digits` decimals, or [`ABSENT`].
pub fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => ABSENT.to_string(),
    }
}

/// A 0–1 ratio as a percentage with one decimal, or [`ABSENT`].
pub fn pct(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r.is_finite() => format!("{:.1}%", r * 100.0),
        _ => ABSENT.to_string(),
    }
}

/// Bytes in binary units (`512 B`, `1.5 KiB`, `3.2 GiB`), or [`ABSENT`].
pub fn bytes(b: Option<u64>) -> String {
    let Some(b) = b else {
        return ABSENT.to_string();
    };
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// Milliseconds, fewer decimals as they grow (`0.85`, `12.3`, `1234`), or [`ABSENT`].
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() && x < 10.0 => format!("{x:.2}"),
        Some(x) if x.is_finite() && x < 1000.0 => format!("{x:.1}"),
        Some(x) if x.is_finite() => format!("{x:.0}"),
        _ => ABSENT.to_string(),
    }
}

/// Hertz as GHz with two decimals, or [`ABSENT`].
pub fn ghz(hz: Option<f64>) -> String {
    match hz {
        Some(h) if h.is_finite() => format!("{:.2}", h / 1e9),
        _ => ABSENT.to_string(),
    }
}

/// `HH:MM:SSZ` (UTC) of a Unix time in milliseconds.
pub fn clock(ts_unix_ms: i64) -> String {
    let s = ts_unix_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// A text bar `[|||||     ]` of `width` cells (brackets included) filled to `ratio` (0–1;
/// clamped); blanks with `?` in the middle when the ratio is absent.
pub fn bar(ratio: Option<f64>, width: usize) -> String {
    let inner = width.saturating_sub(2);
    let body = match ratio {
        Some(r) if r.is_finite() => {
            let filled = ((r.clamp(0.0, 1.0) * inner as f64).round() as usize).min(inner);
            format!("{}{}", "|".repeat(filled), " ".repeat(inner - filled))
        }
        _ => {
            let left = inner / 2;
            let mut s = " ".repeat(inner);
            if inner > 0 {
                s.replace_range(left..left + 1, "?");
            }
            s
        }
    };
    format!("[{body}]")
}

/// `text` cut to `width` characters, with `…` as the last one when it was cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(width - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_a_dash_never_zero() {
        assert_eq!(num(None, 1), "–");
        assert_eq!(num(Some(f64::NAN), 1), "–");
        assert_eq!(pct(None), "–");
        assert_eq!(bytes(None), "–");
        assert_eq!(ms(None), "–");
        assert_eq!(ghz(None), "–");
        assert_eq!(num(Some(0.0), 1), "0.0");
    }

    #[test]
    fn units() {
        assert_eq!(bytes(Some(512)), "512 B");
        assert_eq!(bytes(Some(1536)), "1.5 KiB");
        assert_eq!(bytes(Some(3 * 1024 * 1024 * 1024)), "3.0 GiB");
        assert_eq!(bytes(Some(24 * 1024 * 1024 * 1024)), "24 GiB");
        assert_eq!(pct(Some(0.4213)), "42.1%");
        assert_eq!(ms(Some(0.854)), "0.85");
        assert_eq!(ms(Some(12.34)), "12.3");
        assert_eq!(ms(Some(1234.4)), "1234");
        assert_eq!(ghz(Some(3.2e9)), "3.20");
        assert_eq!(clock(1_747_000_000_123), "21:46:40Z");
    }

    #[test]
    fn bars() {
        assert_eq!(bar(Some(0.5), 12), "[|||||     ]");
        assert_eq!(bar(Some(1.7), 6), "[||||]");
        assert_eq!(bar(Some(-1.0), 6), "[    ]");
        assert_eq!(bar(None, 7), "[  ?  ]");
        assert_eq!(bar(None, 2), "[]");
    }

    #[test]
    fn fitting() {
        assert_eq!(fit("llama-server", 20), "llama-server");
        assert_eq!(fit("llama-server", 6), "llama…");
        assert_eq!(fit("x", 0), "");
    }
}
