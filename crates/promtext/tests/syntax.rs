//! Accepted syntax: names, labels, escapes, blanks, values, timestamps, comments, line endings.

use infermon_promtext::{parse, parse_value, Exposition, MetricType, Sample};

fn ok(text: &str) -> Exposition {
    parse(text).unwrap_or_else(|e| panic!("parsing {text:?}: {e}"))
}

fn one(text: &str) -> Sample {
    let mut expo = ok(text);
    assert_eq!(expo.samples.len(), 1, "{text:?}");
    expo.samples.remove(0)
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn metric_names_with_colons_and_underscores() {
    for name in [
        "llamacpp:prompt_tokens_total",
        "vllm:num_requests_running",
        ":leading_colon",
        "_leading_underscore",
        "a",
        "A:b_C:9",
        "sglang:token_usage",
    ] {
        assert_eq!(one(&format!("{name} 1")).name, name);
    }
}

#[test]
fn label_sets() {
    let s = one(r#"vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-8B"} 0.0"#);
    assert_eq!(
        s.labels,
        labels(&[("engine", "0"), ("model_name", "Qwen/Qwen3-8B")])
    );
    assert_eq!(s.label("model_name"), Some("Qwen/Qwen3-8B"));
    assert_eq!(s.label("nope"), None);

    assert_eq!(one(r#"m{a="b",} 1"#).labels, labels(&[("a", "b")]));
    assert_eq!(
        one(r#"m{a="b",c="d",} 1"#).labels,
        labels(&[("a", "b"), ("c", "d")])
    );
    assert_eq!(one("m{} 1").labels, labels(&[]));
    assert_eq!(
        one(r#"m{_x="",Y9="z"} 1"#).labels,
        labels(&[("_x", ""), ("Y9", "z")])
    );
    // Characters that are delimiters elsewhere are plain text inside a value.
    assert_eq!(
        one("m{a=\"{} =,# \t\",b=\"x\"} 1").labels,
        labels(&[("a", "{} =,# \t"), ("b", "x")])
    );
}

#[test]
fn label_value_escapes() {
    let s = one(r#"m{path="C:\\dir",quote="say \"hi\"",nl="a\nb",all="\\\"\n"} 1"#);
    assert_eq!(s.label("path"), Some(r"C:\dir"));
    assert_eq!(s.label("quote"), Some(r#"say "hi""#));
    assert_eq!(s.label("nl"), Some("a\nb"));
    assert_eq!(s.label("all"), Some("\\\"\n"));
}

#[test]
fn blanks_everywhere() {
    let expected = one(r#"m{a="b",c="d"} 1.5 1700000000000"#);
    for text in [
        "m{a=\"b\",c=\"d\"}\t1.5\t1700000000000",
        "  m { a = \"b\" , c = \"d\" , }   1.5   1700000000000   ",
        "\tm\t{\ta\t=\t\"b\"\t,\tc=\"d\"\t}\t\t1.5 \t 1700000000000\t",
        "m{a=\"b\",c=\"d\"}1.5 1700000000000",
    ] {
        assert_eq!(one(text), expected, "{text:?}");
    }
    assert_eq!(one("m \t 2 \t").value, 2.0);
}

#[test]
fn values() {
    let cases: &[(&str, f64)] = &[
        ("7.0", 7.0),
        ("7", 7.0),
        ("-3", -3.0),
        ("0", 0.0),
        ("-0.5", -0.5),
        ("1.234567e+06", 1_234_567.0),
        ("1.23457e+06", 1_234_570.0),
        ("4.82134e+07", 48_213_400.0),
        ("1e-3", 0.001),
        ("2.5E2", 250.0),
        ("1.7561234567e+09", 1_756_123_456.7),
        ("+Inf", f64::INFINITY),
        ("Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
        ("+inf", f64::INFINITY),
    ];
    for (text, want) in cases {
        assert_eq!(parse_value(text), Some(*want), "parse_value({text:?})");
        assert_eq!(
            one(&format!("m {text}")).value,
            *want,
            "sample value {text:?}"
        );
    }
    assert!(one("m NaN").value.is_nan());
    assert!(parse_value("nan").is_some_and(f64::is_nan));
    for bad in [
        "", " 1", "1 ", "abc", "1,5", "0x10", "1e", "--1", "Infinite", "1_000",
    ] {
        assert_eq!(parse_value(bad), None, "parse_value({bad:?})");
    }
}

#[test]
fn six_significant_digit_value() {
    // llama-server prints doubles through a C++ stream: 6 significant digits, scientific
    // notation from 1e6 up.
    assert_eq!(parse_value("1.23457e+06"), Some(1_234_570.0));
    let expo = ok("llamacpp:prompt_tokens_total 1.23457e+06\n");
    assert_eq!(expo.get("llamacpp:prompt_tokens_total"), Some(1_234_570.0));
}

#[test]
fn timestamps() {
    assert_eq!(
        one("m 1 1700000000123").timestamp_ms,
        Some(1_700_000_000_123)
    );
    assert_eq!(one("m 1 -5").timestamp_ms, Some(-5));
    assert_eq!(one("m 1 0").timestamp_ms, Some(0));
    assert_eq!(one(r#"m{a="b"} 1 42"#).timestamp_ms, Some(42));
    assert_eq!(one("m 1").timestamp_ms, None);
}

#[test]
fn help_and_type_lines() {
    let expo = ok(concat!(
        "# HELP m Docstring with a backslash \\\\ and a newline \\n here.\n",
        "# TYPE m gauge\n",
        "#\tHELP\tt\ttabs\n",
        "# TYPE t Histogram\n",
        "# TYPE s summary\n",
        "# TYPE u untyped\n",
        "# TYPE c counter\n",
        "# HELP empty\n",
        "m 1\n",
    ));
    assert_eq!(
        expo.help.get("m").map(String::as_str),
        Some("Docstring with a backslash \\ and a newline \n here.")
    );
    assert_eq!(expo.help.get("t").map(String::as_str), Some("tabs"));
    assert_eq!(expo.help.get("empty").map(String::as_str), Some(""));
    assert_eq!(expo.metric_type("m"), Some(MetricType::Gauge));
    assert_eq!(expo.metric_type("t"), Some(MetricType::Histogram));
    assert_eq!(expo.metric_type("s"), Some(MetricType::Summary));
    assert_eq!(expo.metric_type("u"), Some(MetricType::Untyped));
    assert_eq!(expo.metric_type("c"), Some(MetricType::Counter));
    assert_eq!(expo.metric_type("nope"), None);
    assert_eq!(MetricType::Histogram.to_string(), "histogram");
    assert_eq!(MetricType::Counter.as_str(), "counter");
}

#[test]
fn other_comments_and_blank_lines_are_ignored() {
    let expo = ok(concat!(
        "\n",
        "# just a comment\n",
        "#\n",
        "   \t \n",
        "# HELP\n",
        "# TYPE only_name\n",
        "#HELPX whatever {{{ \"\n",
        "  # indented comment with \"unbalanced quote\n",
        "m 1\n",
        "\n",
    ));
    assert_eq!(expo.samples.len(), 1);
    assert!(expo.types.is_empty());
    assert!(expo.help.is_empty());
}

#[test]
fn line_endings() {
    let want = ok("a 1\nb 2\n");
    assert_eq!(ok("a 1\r\nb 2\r\n"), want);
    assert_eq!(ok("a 1\nb 2"), want);
    assert_eq!(ok("a 1\r\nb 2"), want);
    assert_eq!(ok("a 1\r\nb 2\r"), want);
    assert_eq!(ok("\u{feff}a 1\nb 2\n"), want);
    assert_eq!(ok(""), Exposition::default());
    assert_eq!(ok("\n\r\n  \n"), Exposition::default());
}

#[test]
fn histogram_and_summary_series_are_plain_samples() {
    let expo = ok(concat!(
        "# TYPE h histogram\n",
        "h_bucket{le=\"0.5\"} 1\n",
        "h_bucket{le=\"+Inf\"} 3\n",
        "h_sum 4.5\n",
        "h_count 3\n",
        "# TYPE s summary\n",
        "s{quantile=\"0.99\"} 0.2\n",
        "s_sum 1\n",
        "s_count 5\n",
    ));
    assert_eq!(expo.samples.len(), 7);
    assert_eq!(expo.find("h_bucket").count(), 2);
    assert_eq!(expo.get("h_count"), Some(3.0));
    assert_eq!(expo.get("h_sum"), Some(4.5));
    assert_eq!(expo.get("h_bucket"), None);
    assert_eq!(
        expo.find("h_bucket").last().and_then(|s| s.label("le")),
        Some("+Inf")
    );
    assert_eq!(
        expo.find("s").next().and_then(|s| s.label("quantile")),
        Some("0.99")
    );
}

#[test]
fn get_wants_the_unlabelled_series() {
    let expo = ok("m{a=\"x\"} 1\nm 2\nm{a=\"y\"} 3\n");
    assert_eq!(expo.get("m"), Some(2.0));
    assert_eq!(expo.sum("m"), Some(6.0));
    assert_eq!(
        expo.find("m").map(|s| s.value).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0]
    );
    // Exact names only: no prefix matching.
    assert_eq!(expo.get("m_total"), None);
    assert_eq!(expo.find("").count(), 0);
}

#[test]
fn repeated_help_and_type_keep_the_last() {
    let expo = ok("# TYPE m gauge\n# TYPE m counter\n# HELP m one\n# HELP m two\n");
    assert_eq!(expo.metric_type("m"), Some(MetricType::Counter));
    assert_eq!(expo.help.get("m").map(String::as_str), Some("two"));
}

#[test]
fn large_input_parses_in_one_pass() {
    let mut text = String::new();
    for i in 0..50_000 {
        text.push_str(&format!(
            "vllm:request_success_total{{engine=\"{}\",finished_reason=\"stop\"}} {i}.0\n",
            i % 8
        ));
    }
    let expo = ok(&text);
    assert_eq!(expo.samples.len(), 50_000);
    assert_eq!(
        expo.sum("vllm:request_success_total"),
        Some(1_249_975_000.0)
    );

    let long_value = "x".repeat(1 << 20);
    let s = one(&format!("m{{a=\"{long_value}\"}} 1"));
    assert_eq!(s.label("a").map(str::len), Some(1 << 20));
}
