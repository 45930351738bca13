//! The `fit` tool's work: llama-server flags and a GGUF file → the memory estimate, computed
//! here with `infermon-fit` (the same calls and JSON fields as `infermon fit --json`).

use std::path::{Path, PathBuf};

use infermon_fit::report::{estimate_fields, what_ifs};
use infermon_fit::units::parse_bytes;
use infermon_fit::{estimate, largest_context, parse_args, ModelInfo};
use serde_json::{json, Value};

/// What the `fit` tool is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRequest {
    /// Absolute path of the GGUF file, on the machine `infermon mcp` runs on.
    pub model: String,
    /// llama-server's other flags, one word per element (`["-c", "8192", "-np", "4"]`).
    pub args: Vec<String>,
    /// Offload to a GPU (split by `-ngl`); without it everything is on the host.
    pub gpu: bool,
    /// Memory budget like `24GiB`: also find the largest context that fits in it.
    pub budget: Option<String>,
}

fn load(path: &Path) -> Result<ModelInfo, String> {
    infermon_fit::from_gguf::load(path)
        .map_err(|e| format!("cannot read model \"{}\": {e}", path.display()))
}

/// The estimate as JSON: the fields of `infermon fit --json` (`weights_bytes`, `kv_bytes`,
/// `compute_bytes`, `output_bytes`, `tokenizer_bytes`, `sampler_bytes`, `overhead_bytes`,
/// `total_bytes`, `kv`, `geometry`, `devices`, `what_if`, `largest_context_in_budget`, ...).
/// `available` is the memory the agent's node has free now (`MemAvailable`), when known:
/// `fits_now` compares the total with it.
///
/// # Errors
///
/// A relative or unreadable model path, flags llama-server does not know, a bad budget, or a
/// combination llama-server refuses; each message names the value and what was expected.
pub fn fit(req: &FitRequest, available: Option<u64>) -> Result<Value, String> {
    let model = PathBuf::from(&req.model);
    if !model.is_absolute() {
        return Err(format!(
            "invalid model \"{}\": expected the absolute path of a GGUF file on the machine \
             infermon mcp runs on, e.g. /models/qwen2.5-7b-q4_k_m.gguf",
            req.model
        ));
    }
    let budget = req
        .budget
        .as_deref()
        .map(|b| parse_bytes(b).map_err(|e| format!("invalid budget \"{b}\": {e}")))
        .transpose()?;
    let mut argv = vec!["-m".to_string(), req.model.clone()];
    argv.extend(req.args.iter().cloned());
    let (p, errors) = parse_args(&argv);
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "args not understood: {}; expected llama-server's own flags, one word per element, \
             e.g. [\"-c\", \"8192\", \"-np\", \"4\", \"-ctk\", \"q8_0\"]",
            list.join("; ")
        ));
    }
    if p.model.as_deref() != Some(model.as_path()) {
        return Err(format!(
            "args name another model ({}): give the model once, in \"model\"",
            p.model
                .as_deref()
                .map(|m| m.display().to_string())
                .unwrap_or_default()
        ));
    }
    let info = load(&model)?;
    let draft = p.draft_model.as_deref().map(load).transpose()?;
    let e = estimate(&info, draft.as_ref(), &p, req.gpu).map_err(|e| e.to_string())?;
    let ifs = what_ifs(&info, draft.as_ref(), &p, req.gpu, &e);
    let largest = budget.and_then(|b| largest_context(&info, draft.as_ref(), &p, req.gpu, b));
    let mut v = json!({
        "model": model,
        "params": p,
        "what_if": ifs,
        "budget_bytes": budget,
        "largest_context_in_budget": largest,
        "node_available_bytes": available,
        "fits_now": available.map(|a| e.total_bytes <= a),
    });
    if let Value::Object(m) = &mut v {
        m.extend(estimate_fields(&e));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(model: &str, args: &[&str]) -> FitRequest {
        FitRequest {
            model: model.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            gpu: false,
            budget: None,
        }
    }

    #[test]
    fn bad_inputs_name_the_value() {
        let e = fit(&req("model.gguf", &[]), None).unwrap_err();
        assert!(
            e.contains("invalid model \"model.gguf\": expected the absolute path"),
            "{e}"
        );
        let e = fit(&req("/nonexistent/m.gguf", &["--no-such-flag"]), None).unwrap_err();
        assert!(
            e.contains("--no-such-flag") && e.contains("expected llama-server"),
            "{e}"
        );
        let e = fit(&req("/nonexistent/m.gguf", &["-m", "/other.gguf"]), None).unwrap_err();
        assert!(e.contains("args name another model (/other.gguf)"), "{e}");
        let e = fit(&req("/nonexistent/m.gguf", &["-c", "4096"]), None).unwrap_err();
        assert!(
            e.contains("cannot read model \"/nonexistent/m.gguf\""),
            "{e}"
        );
        let mut r = req("/nonexistent/m.gguf", &[]);
        r.budget = Some("lots".into());
        let e = fit(&r, None).unwrap_err();
        assert!(e.contains("invalid budget \"lots\""), "{e}");
    }
}
