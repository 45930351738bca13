//! Property-style test: on generated random-ish input `parse` never panics, and what it returns
//! is consistent (errors name an existing line; accepted samples have valid names).

use infermon_promtext::{parse, Exposition, ParseError};

/// xorshift64*: tiny, deterministic, good enough to drive input generation.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Pieces that exercise every branch of the grammar when glued together at random.
#[rustfmt::skip]
const FRAGMENTS: &[&str] = &[
    "vllm:num_requests_running", "llamacpp:prompt_tokens_total", "foo", "_x", ":", "9", "a",
    "_bucket", "_sum", "_count", "{", "}", "=", ",", "\"", "\\", "\\\\", "\\\"", "\\n", "\\x",
    "le", "engine", "model_name", "=\"0\"", "=\"+Inf\"", " ", "  ", "\t", "\n", "\r\n", "\r", "#",
    "# ", "HELP", "TYPE", "# HELP ", "# TYPE ", "counter", "gauge", "histogram", "summary",
    "untyped", "bogus", "0", "1", "-3", "7.0", "1.23457e+06", "4.82134e+07", "+Inf", "-Inf", "Inf",
    "NaN", "e", "E+", ".", "-", "+", "1700000000000", "-9223372036854775809",
    "99999999999999999999", "<", "<html>", "<!DOCTYPE html>", "[", "]", "é", "😀", "\u{feff}",
    "\u{0}", "ß{", "Qwen/Qwen3-8B",
];

fn generate(rng: &mut XorShift) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(40) {
        s.push_str(rng.pick(FRAGMENTS));
    }
    s
}

/// A fixture with a few characters deleted, duplicated or replaced (at char boundaries, so
/// the result stays UTF-8).
fn mutate(rng: &mut XorShift, base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    const REPLACEMENTS: &[char] = &[
        '{', '}', '"', '\\', '=', ',', ' ', '\t', '\n', '\r', '#', 'x', '9', 'é',
    ];
    for _ in 0..1 + rng.below(6) {
        if chars.is_empty() {
            break;
        }
        let at = rng.below(chars.len());
        match rng.below(3) {
            0 => {
                chars.remove(at);
            }
            1 => chars.insert(at, chars[at]),
            _ => chars[at] = rng.pick(REPLACEMENTS),
        }
    }
    chars.into_iter().collect()
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn check(input: &str) {
    let lines = input.split('\n').count();
    match parse(input) {
        Ok(Exposition {
            samples,
            types,
            help,
        }) => {
            for s in &samples {
                assert!(
                    is_metric_name(&s.name),
                    "{input:?} gave sample name {:?}",
                    s.name
                );
            }
            for family in types.keys().chain(help.keys()) {
                assert!(is_metric_name(family), "{input:?} gave family {family:?}");
            }
        }
        Err(e @ ParseError { line, .. }) => {
            assert!(
                (1..=lines).contains(&line),
                "{input:?}: line {line} of {lines}"
            );
            let message = e.to_string();
            assert!(message.starts_with(&format!("line {line}: ")), "{message}");
            assert!(message.contains("expected"), "{message}");
        }
    }
}

#[test]
fn generated_inputs_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        check(&generate(&mut rng));
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for name in [
        "llamacpp_01_current_default.prom",
        "vllm_01_idle_single_engine.prom",
        "vllm_02_ttft_histogram.prom",
    ] {
        let base = std::fs::read_to_string(format!("{dir}/{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&base);
        for _ in 0..2_000 {
            check(&mutate(&mut rng, &base));
        }
    }
}

#[test]
fn every_prefix_of_a_fixture_never_panics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vllm_02_ttft_histogram.prom"
    );
    let base = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (at, _) in base.char_indices() {
        check(&base[..at]);
    }
}
