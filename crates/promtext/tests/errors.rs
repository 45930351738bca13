//! Rejected input: the exact error message for each case.

use infermon_promtext::{parse, ParseError, ParseErrorKind};

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(expo) => panic!("{text:?} parsed: {expo:?}"),
        Err(e) => e,
    }
}

fn msg(text: &str) -> String {
    err(text).to_string()
}

#[test]
fn html_body() {
    assert_eq!(
        msg("<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n"),
        "line 1: body looks like html, not prometheus text: \"<!DOCTYPE html>\": \
         expected metric samples and # comments"
    );
    assert_eq!(
        msg("\r\n\n  <html>\n<head><title>Login</title></head>"),
        "line 3: body looks like html, not prometheus text: \"<html>\": \
         expected metric samples and # comments"
    );
    let e = err("<html>");
    assert_eq!(e.line, 1);
    assert!(matches!(e.kind, ParseErrorKind::Html { .. }));
}

#[test]
fn json_quoted_string_body() {
    // llama.cpp build 7010 served the metrics text as a JSON string (issue #17384).
    let body = "\"# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\\n\
                # TYPE llamacpp:prompt_tokens_total counter\\nllamacpp:prompt_tokens_total 18342\\n\"";
    assert_eq!(
        msg(body),
        "line 1: body looks like json (a quoted string), not prometheus text: \
         \"\\\"# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\\\\n# TYPE …\": \
         expected metric samples and # comments"
    );
}

#[test]
fn json_object_and_array_bodies() {
    assert_eq!(
        msg(r#"{"error":{"code":501,"message":"This server does not support metrics endpoint."}}"#),
        "line 1: body looks like json (an object), not prometheus text: \
         \"{\\\"error\\\":{\\\"code\\\":501,\\\"message\\\":\\\"This server does not support metrics endpoint.\\\"}…\": \
         expected metric samples and # comments"
    );
    assert_eq!(
        msg("\n[1, 2]"),
        "line 2: body looks like json (an array), not prometheus text: \"[1, 2]\": \
         expected metric samples and # comments"
    );
}

#[test]
fn unterminated_label_value() {
    assert_eq!(
        msg("# TYPE foo gauge\nfoo{a=\"b} 1\n"),
        "line 2: unterminated label value \"\\\"b} 1\" for metric \"foo\": expected a closing '\"'"
    );
    assert_eq!(
        msg("foo{a=\"b\\\"} 1"),
        "line 1: unterminated label value \"\\\"b\\\\\\\"} 1\" for metric \"foo\": \
         expected a closing '\"'"
    );
}

#[test]
fn missing_value() {
    assert_eq!(
        msg("ok 1\nfoo{a=\"b\"}\n"),
        "line 2: missing value for metric \"foo\" in \"foo{a=\\\"b\\\"}\": \
         expected a number after the name and labels"
    );
    assert_eq!(
        msg("vllm:num_requests_running   \r\n"),
        "line 1: missing value for metric \"vllm:num_requests_running\" in \
         \"vllm:num_requests_running\": expected a number after the name and labels"
    );
}

#[test]
fn bad_number() {
    assert_eq!(
        msg("# HELP foo x\n# TYPE foo gauge\nfoo abc\n"),
        "line 3: invalid value \"abc\" for metric \"foo\": expected a number, +Inf, -Inf or NaN"
    );
    assert_eq!(
        msg("foo{a=\"b\"} 1,5"),
        "line 1: invalid value \"1,5\" for metric \"foo\": expected a number, +Inf, -Inf or NaN"
    );
}

#[test]
fn bad_metric_name() {
    assert_eq!(
        msg("foo-bar 1"),
        "line 1: invalid metric name \"foo-bar\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"
    );
    assert_eq!(
        msg("9lives 1"),
        "line 1: invalid metric name \"9lives\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"
    );
    assert_eq!(
        msg("ok 1\n  {a=\"b\"} 1"),
        "line 2: invalid metric name \"{a=\\\"b\\\"} 1\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"
    );
    assert_eq!(
        msg("# TYPE foo.bar counter"),
        "line 1: invalid metric name \"foo.bar\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"
    );
    assert_eq!(
        msg("# HELP foo{ help"),
        "line 1: invalid metric name \"foo{\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"
    );
    assert_eq!(
        msg("métrique 1"),
        "line 1: invalid metric name \"métrique\": expected [a-zA-Z_:][a-zA-Z0-9_:]*"
    );
}

#[test]
fn unknown_type() {
    assert_eq!(
        msg("# TYPE foo countr\nfoo 1"),
        "line 1: unknown metric type \"countr\" for metric \"foo\": \
         expected counter, gauge, histogram, summary or untyped"
    );
    assert_eq!(
        msg("# TYPE foo gauge histogram"),
        "line 1: unknown metric type \"gauge histogram\" for metric \"foo\": \
         expected counter, gauge, histogram, summary or untyped"
    );
}

#[test]
fn bad_label_name() {
    assert_eq!(
        msg("foo{9a=\"b\"} 1"),
        "line 1: invalid label name \"9a=\\\"b\\\"} 1\" for metric \"foo\": \
         expected [a-zA-Z_][a-zA-Z0-9_]*"
    );
    assert_eq!(
        msg("foo{a:b=\"c\"} 1"),
        "line 1: invalid label set \":b=\\\"c\\\"} 1\" for metric \"foo\": \
         expected '=' after the label name"
    );
    assert_eq!(
        msg("foo{,} 1"),
        "line 1: invalid label name \",} 1\" for metric \"foo\": expected [a-zA-Z_][a-zA-Z0-9_]*"
    );
}

#[test]
fn bad_label_set() {
    assert_eq!(
        msg("foo{a=b} 1"),
        "line 1: invalid label set \"b} 1\" for metric \"foo\": \
         expected '\"' to open the label value"
    );
    assert_eq!(
        msg("foo{a=\"b\" c=\"d\"} 1"),
        "line 1: invalid label set \"c=\\\"d\\\"} 1\" for metric \"foo\": \
         expected ',' or '}' after the label value"
    );
    assert_eq!(
        msg("foo{a=\"b\""),
        "line 1: invalid label set \"foo{a=\\\"b\\\"\" for metric \"foo\": \
         expected ',' or '}' after the label value"
    );
    assert_eq!(
        msg("foo{a=\"b\", "),
        "line 1: invalid label set \"foo{a=\\\"b\\\", \" for metric \"foo\": \
         expected a label name or '}'"
    );
    assert_eq!(
        msg("foo{a"),
        "line 1: invalid label set \"foo{a\" for metric \"foo\": expected '=' after the label name"
    );
}

#[test]
fn bad_escape() {
    assert_eq!(
        msg(r#"foo{path="C:\dir"} 1"#),
        "line 1: invalid escape \"\\\\d\" in a label value for metric \"foo\": \
         expected \\\\, \\\" or \\n"
    );
}

#[test]
fn bad_timestamp_and_trailing_text() {
    assert_eq!(
        msg("foo 1 12.5"),
        "line 1: invalid timestamp \"12.5\" for metric \"foo\": \
         expected an integer number of milliseconds"
    );
    assert_eq!(
        msg("foo 1 2 # comment"),
        "line 1: unexpected text \"# comment\" after the timestamp for metric \"foo\": \
         expected the end of the line"
    );
}

#[test]
fn long_offending_text_is_cut_to_80_characters() {
    let value = "z".repeat(200);
    let e = err(&format!("foo {value}"));
    assert_eq!(
        e.to_string(),
        format!(
            "line 1: invalid value \"{}…\" for metric \"foo\": expected a number, +Inf, -Inf or NaN",
            "z".repeat(80)
        )
    );
    assert_eq!(
        e.kind,
        ParseErrorKind::InvalidValue {
            metric: "foo".to_owned(),
            text: format!("{}…", "z".repeat(80)),
        }
    );
}

#[test]
fn first_error_wins_and_line_numbers_count_crlf_lines() {
    let e = err("a 1\r\nb 2\r\n\r\nc x\r\nd y\r\n");
    assert_eq!(e.line, 4);
    assert_eq!(
        e.to_string(),
        "line 4: invalid value \"x\" for metric \"c\": expected a number, +Inf, -Inf or NaN"
    );
}
