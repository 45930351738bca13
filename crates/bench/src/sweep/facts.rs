//! What the sweep knows of a model before it measures anything: from its GGUF header
//! (quantization from `general.file_type`, bits per weight = 8 × tensor bytes ÷ parameters),
//! or what a server says of it ([`crate::served`]).

use std::path::Path;

/// What is known about one model: from its GGUF header, or what a server says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    /// Quantization: the name of `general.file_type` (`Q4_K_M`), else the type holding most
    /// weight bytes, with ` (guessed)`; for a served model without a file, the server's
    /// word or a name found in the model's name (` (from name)`), else `unknown`.
    pub quant: String,
    /// File size, bytes.
    pub size_bytes: Option<u64>,
    /// 8 × tensor bytes ÷ parameters (`None` for a file without tensors).
    pub bits_per_weight: Option<f64>,
    /// Parameters (elements of every tensor).
    pub parameters: Option<u64>,
    /// Where these facts come from: `GGUF header`, `Ollama /api/show`, `model name`.
    pub source: String,
}

/// llama.cpp's `llama_ftype` names (`include/llama.h`), by value.
const FILE_TYPES: &[(u64, &str)] = &[
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (7, "Q8_0"),
    (8, "Q5_0"),
    (9, "Q5_1"),
    (10, "Q2_K"),
    (11, "Q3_K_S"),
    (12, "Q3_K_M"),
    (13, "Q3_K_L"),
    (14, "Q4_K_S"),
    (15, "Q4_K_M"),
    (16, "Q5_K_S"),
    (17, "Q5_K_M"),
    (18, "Q6_K"),
    (19, "IQ2_XXS"),
    (20, "IQ2_XS"),
    (21, "Q2_K_S"),
    (22, "IQ3_XS"),
    (23, "IQ3_XXS"),
    (24, "IQ1_S"),
    (25, "IQ4_NL"),
    (26, "IQ3_S"),
    (27, "IQ3_M"),
    (28, "IQ2_S"),
    (29, "IQ2_M"),
    (30, "IQ4_XS"),
    (31, "IQ1_M"),
    (32, "BF16"),
    (36, "TQ1_0"),
    (37, "TQ2_0"),
    (38, "MXFP4_MOE"),
    (39, "NVFP4"),
    (40, "Q1_0"),
    (41, "Q2_0"),
];

/// The name of a `general.file_type` value.
pub fn file_type_name(id: u64) -> Option<&'static str> {
    FILE_TYPES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Every `general.file_type` name.
pub(crate) fn file_type_names() -> impl Iterator<Item = &'static str> {
    FILE_TYPES.iter().map(|(_, n)| *n)
}

/// Bits per weight: 8 × weight bytes ÷ parameters (`None` without parameters).
pub(crate) fn bits_per_weight(bytes: u64, parameters: u64) -> Option<f64> {
    (parameters > 0).then(|| 8.0 * bytes as f64 / parameters as f64)
}

/// Reads what the sweep needs from a GGUF header.
///
/// # Errors
///
/// Names the file when it cannot be read or its header is not GGUF.
pub fn model_facts(path: &Path) -> Result<ModelFacts, String> {
    let f = infermon_gguf::read_path(path).map_err(|e| e.to_string())?;
    facts_of(&f).map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) fn facts_of(f: &infermon_gguf::GgufFile) -> Result<ModelFacts, String> {
    let mut parameters = 0u64;
    let mut by_type: Vec<(&'static str, u64)> = Vec::new();
    for t in &f.tensors {
        let n = t
            .n_elements()
            .map_err(|e| format!("tensor \"{}\": {e}", t.name))?;
        let bytes = t
            .n_bytes()
            .map_err(|e| format!("tensor \"{}\": {e}", t.name))?;
        parameters = parameters.saturating_add(n);
        if t.dims.len() >= 2 {
            let name = t.ggml_type.name();
            match by_type.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 += bytes,
                None => by_type.push((name, bytes)),
            }
        }
    }
    let tensor_bytes = f.tensor_bytes().map_err(|e| e.to_string())?;
    let quant = match f.get_u64("general.file_type") {
        Some(id) => file_type_name(id).map_or_else(|| format!("file_type {id}"), str::to_string),
        None => by_type.iter().max_by_key(|(_, b)| *b).map_or_else(
            || "unknown".to_string(),
            |(n, _)| format!("{} (guessed)", n.to_ascii_uppercase()),
        ),
    };
    Ok(ModelFacts {
        quant,
        size_bytes: Some(f.file_size.unwrap_or(tensor_bytes)),
        bits_per_weight: bits_per_weight(tensor_bytes, parameters),
        parameters: Some(parameters),
        source: "GGUF header".into(),
    })
}
