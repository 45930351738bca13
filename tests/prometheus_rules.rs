//! The Prometheus alerting rules shipped in `deploy/prometheus/`: `promtool check rules` and
//! `promtool test rules` pass on them (skipped without promtool unless
//! `INFERMON_REQUIRE_E2E=1`), every alert has a `for`, a severity, a summary and a
//! description and is tested both firing and not firing, and every metric, label and label
//! value the rules use is one infermon exports (read from `crates/model/src/export.rs`,
//! `crates/api/src/histograms.rs` and the diagnosis crate that names
//! `infermon_observation_active`), so the rules cannot drift from the code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const RULES: &str = "deploy/prometheus/infermon-alerts.yml";
const TESTS: &str = "deploy/prometheus/infermon-alerts.test.yml";

/// Where the exporter names its series and labels.
const EXPORTERS: [&str; 2] = ["crates/model/src/export.rs", "crates/api/src/histograms.rs"];
/// Where label values used in matchers come from, besides [`EXPORTERS`] (outcome names).
const VALUE_SOURCES: [&str; 1] = ["crates/model/src/request.rs"];
/// Metrics named outside [`EXPORTERS`] (the diagnosis layer's): the crate source that names
/// one is read as an exporter too; while no crate does, the test says so instead of failing.
const ELSEWHERE: [&str; 1] = ["infermon_observation_active"];
/// Labels Prometheus adds when scraping (`exported_instance` is infermon's own `instance`,
/// renamed with honor_labels false), and labels the rules make with `label_replace`.
const OTHER_LABELS: [&str; 4] = ["job", "instance", "exported_instance", "engine_source"];
/// The alert that forwards infermon's own observations keeps their `severity` label.
const FORWARDING_ALERT: &str = "InfermonObservation";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn run(promtool: &Path, args: &[&str]) -> String {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{} {}` failed ({}):\n{text}",
        promtool.display(),
        args.join(" "),
        out.status
    );
    text
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let Some(promtool) = support::promtool("promtool_checks_and_tests_the_rules") else {
        return;
    };
    let check = run(&promtool, &["check", "rules", RULES]);
    let n = alerts(&read(RULES)).len();
    assert!(
        check.contains(&format!("SUCCESS: {n} rules found")),
        "promtool found another number of rules than the {n} alerts:\n{check}"
    );
    let test = run(&promtool, &["test", "rules", TESTS]);
    assert!(test.contains("SUCCESS"), "{test}");
    eprintln!("{check}{test}");
}

/// Each alert's name and the lines of its rule.
fn alerts(yaml: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut open = false;
    for line in yaml.lines() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            out.push((name.trim().to_string(), String::new()));
            open = true;
        } else if t.starts_with("- name:") || t.starts_with("- record:") {
            open = false;
        } else if open {
            let (_, block) = out.last_mut().unwrap();
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// The value of `key:` in a rule's lines, if the rule has that key.
fn field<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn every_alert_is_complete_and_tested_firing_and_not_firing() {
    let rules = read(RULES);
    let all = alerts(&rules);
    assert!(all.len() >= 15, "only {} alerts in {RULES}", all.len());
    let tests = read(TESTS);
    for (name, block) in &all {
        assert!(field(block, "expr").is_some(), "{name}: no expr");
        let r#for = field(block, "for").unwrap_or_else(|| panic!("{name}: no `for:`"));
        assert!(
            r#for.ends_with('m'),
            "{name}: for: {for} (minutes expected)"
        );
        match field(block, "severity") {
            _ if name == FORWARDING_ALERT => assert!(
                field(block, "severity").is_none(),
                "{name} must keep the observation's own severity label"
            ),
            Some(s) => assert!(
                ["info", "warning", "critical"].contains(&s),
                "{name}: severity {s}"
            ),
            None => panic!("{name}: no severity label"),
        }
        for key in ["summary", "description"] {
            assert!(field(block, key).is_some(), "{name}: no {key} annotation");
        }
        // The test cases of this alert: `alertname: NAME` up to the next case.
        let cases: Vec<&str> = tests
            .split("- eval_time:")
            .filter(|c| {
                c.lines()
                    .any(|l| l.trim() == format!("alertname: {name}").as_str())
            })
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("- exp_labels:")),
            "{name}: no test in {TESTS} where it fires"
        );
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "{name}: no test in {TESTS} where it does not fire"
        );
        assert!(
            cases
                .iter()
                .filter(|c| c.contains("- exp_labels:"))
                .all(|c| c.contains("exp_annotations:")),
            "{name}: a firing test in {TESTS} without exp_annotations"
        );
    }
}

fn ident(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// Every `"ident"` string literal in Rust source (identifier characters only).
fn literals(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices('"') {
        let rest = &src[i + 1..];
        let n = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        if n > 0 && rest[n..].starts_with('"') {
            out.insert(rest[..n].to_string());
        }
    }
    out
}

/// Label names the exporters give: the first element of `("name", value)` tuples.
fn label_names(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("(\"") {
        if src[..i].chars().next_back().is_some_and(ident) {
            continue; // a call such as `o.g("infermon_…", …)`, not a tuple
        }
        let rest = &src[i + 2..];
        let n = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        if n > 0 && rest[n..].starts_with("\",") {
            out.insert(rest[..n].to_string());
        }
    }
    out
}

/// Metric-like names (`infermon_…`, `gen_ai_…`) in a text, with the byte offset after each.
fn metric_names(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for prefix in ["infermon_", "gen_ai_"] {
        for (i, _) in text.match_indices(prefix) {
            if text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| ident(c) || c.is_ascii_uppercase())
            {
                continue; // part of a longer word
            }
            let n = text[i..]
                .find(|c: char| !ident(c))
                .unwrap_or(text.len() - i);
            let name = &text[i..i + n];
            if !name.ends_with('_') {
                out.push((name.to_string(), i + n));
            }
        }
    }
    out
}

/// The label matchers of the selector starting at `text[at..]` (`{a="x", b=~"y|z"}`), as
/// (label, operator, value).
fn matchers(text: &str, at: usize) -> Vec<(String, String, String)> {
    let Some(body) = text[at..].strip_prefix('{') else {
        return Vec::new();
    };
    let body = &body[..body.find('}').unwrap_or(body.len())];
    body.split(',')
        .filter_map(|m| {
            let m = m.trim();
            let op_at = m.find(['=', '!'])?;
            let (label, rest) = m.split_at(op_at);
            let op_len =
                if rest.starts_with("=~") || rest.starts_with("!~") || rest.starts_with("!=") {
                    2
                } else {
                    1
                };
            let value = rest[op_len..].trim().trim_matches(['"', '`', '\'']);
            Some((
                label.trim().to_string(),
                rest[..op_len].to_string(),
                value.to_string(),
            ))
        })
        .collect()
}

/// Label lists of `by (…)`, `without (…)`, `on (…)`, `ignoring (…)` in an expression.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kw in [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        for (i, _) in expr.match_indices(kw) {
            let before = expr[..i].chars().next_back();
            if before.is_some_and(|c| ident(c) || c.is_ascii_uppercase()) {
                continue;
            }
            let rest = expr[i + kw.len()..].trim_start();
            let Some(list) = rest.strip_prefix('(') else {
                continue;
            };
            let list = &list[..list.find(')').unwrap_or(list.len())];
            out.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
    }
    out
}

/// The `expr` of every rule, single-line or block.
fn exprs(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let Some(v) = t.strip_prefix("expr:") else {
            continue;
        };
        let v = v.trim();
        if v != "|" && v != ">" && v != "|-" && v != ">-" {
            out.push(v.to_string());
            continue;
        }
        let indent = line.len() - t.len();
        let mut e = String::new();
        while let Some(next) = lines.peek() {
            let nt = next.trim_start();
            if !nt.is_empty() && next.len() - nt.len() <= indent {
                break;
            }
            e.push_str(nt);
            e.push('\n');
            lines.next();
        }
        out.push(e);
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source of the crate file that names this metric, if one does.
fn exporter_of(name: &str) -> Option<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join("crates"))
        .into_iter()
        .flatten()
        .flatten()
    {
        rust_files(&entry.path().join("src"), &mut files);
    }
    let quoted = format!("\"{name}\"");
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find(|s| s.contains(&quoted))
}

#[test]
fn rules_use_only_exported_metrics_labels_and_values() {
    let mut exporters: String = EXPORTERS.iter().map(|f| read(f)).collect();
    let mut missing = BTreeSet::new();
    for name in ELSEWHERE {
        match exporter_of(name) {
            Some(src) => exporters.push_str(&src),
            None => {
                missing.insert(name.to_string());
            }
        }
    }
    let names = literals(&exporters);
    let labels = label_names(&exporters);
    let values: BTreeSet<String> = names
        .iter()
        .cloned()
        .chain(VALUE_SOURCES.iter().flat_map(|f| literals(&read(f))))
        .collect();
    assert!(
        names.contains("infermon_engine_up") && labels.contains("outcome"),
        "the exporters' names were not found: did export.rs or histograms.rs move?"
    );
    let known = |n: &str| {
        names.contains(n)
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| n.strip_suffix(s).is_some_and(|base| names.contains(base)))
    };
    let mut unknown = BTreeSet::new();
    for file in [RULES, TESTS] {
        let text = read(file);
        for (name, after) in metric_names(&text) {
            if missing.contains(&name) {
                continue; // neither it nor its labels can be checked yet
            }
            if !known(&name) && !labels.contains(&name) {
                unknown.insert(format!("{file}: metric {name}"));
                continue;
            }
            for (label, op, value) in matchers(&text, after) {
                if label != "__name__"
                    && !labels.contains(&label)
                    && !OTHER_LABELS.contains(&label.as_str())
                {
                    unknown.insert(format!("{file}: label {label} of {name}"));
                }
                // Values: only in the rules (the tests' values are made-up data), and only plain
                // names or alternatives of plain names (a real regex is not checked).
                let plain = value
                    .split('|')
                    .all(|v| !v.is_empty() && v.chars().all(ident));
                if file == RULES && !OTHER_LABELS.contains(&label.as_str()) && plain {
                    for v in value.split('|') {
                        if !values.contains(v) {
                            unknown.insert(format!("{file}: value {label}{op}\"{v}\" of {name}"));
                        }
                    }
                }
            }
        }
    }
    for expr in exprs(&read(RULES)) {
        for label in grouping_labels(&expr) {
            if !labels.contains(&label) && !OTHER_LABELS.contains(&label.as_str()) {
                unknown.insert(format!(
                    "{RULES}: grouping label {label} in `{}`",
                    expr.trim()
                ));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "names not exported by infermon ({}):\n{}",
        EXPORTERS.join(", "),
        unknown.into_iter().collect::<Vec<_>>().join("\n")
    );
    for name in missing {
        eprintln!(
            "note: {name} is used by {RULES} but no crate exports it yet (the diagnosis layer \
             adds it); its alert cannot fire until one does"
        );
    }
}
