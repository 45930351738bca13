//! llama-server's command line, as a user would paste it, turned into the settings that decide
//! memory. Flags that do not affect memory are accepted and listed; flags llama-server does not
//! know are reported, never silently ignored.

use std::path::PathBuf;

use crate::flags::FLAGS;

/// How many values a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// A switch.
    None,
    /// Exactly one value.
    Value,
    /// A value when the next word is one of the flag's choices (`-fa [on|off|auto]`).
    Optional,
}

/// Flash attention setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlashAttn {
    /// `-fa on`
    On,
    /// `-fa off`
    Off,
    /// `-fa auto` (the default): on wherever the backend supports it — on CPU it is on.
    Auto,
}

/// GPU layers setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "n")]
pub enum GpuLayers {
    /// `-ngl auto` (default): as many as fit.
    Auto,
    /// `-ngl all`
    All,
    /// `-ngl N`
    Count(u32),
}

/// The memory-relevant settings of one llama-server command line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServerParams {
    /// `-m`
    pub model: Option<PathBuf>,
    /// `-c` (0 = the model's training context).
    pub ctx: u64,
    /// `-np` (-1 = auto: 4 slots with a unified KV cache).
    pub parallel: i64,
    /// `-kvu` / `-no-kvu`; `None` = default (unified only when `-np` is auto).
    pub kv_unified: Option<bool>,
    /// `--kv-unified-per-slot`
    pub kv_unified_per_slot: Option<u64>,
    /// `-ctk` type name.
    pub cache_type_k: String,
    /// `-ctv` type name.
    pub cache_type_v: String,
    /// `-fa`
    pub flash_attn: FlashAttn,
    /// `-b`
    pub batch: u64,
    /// `-ub`
    pub ubatch: u64,
    /// `-ngl`
    pub gpu_layers: GpuLayers,
    /// `--swa-full`
    pub swa_full: bool,
    /// `-nkvo`
    pub no_kv_offload: bool,
    /// `-md` draft model.
    pub draft_model: Option<PathBuf>,
    /// `-ctkd`
    pub draft_cache_type_k: Option<String>,
    /// `-ctvd`
    pub draft_cache_type_v: Option<String>,
    /// `-ngld`
    pub draft_gpu_layers: Option<GpuLayers>,
    /// `--mmproj` (estimated as weights only).
    pub mmproj: Option<PathBuf>,
    /// `-cram` prompt cache limit in MiB (-1 = no limit, 0 = off); default 8192.
    pub cache_ram_mib: i64,
    /// Known flags that do not change memory, as given.
    pub other_flags: Vec<String>,
}

impl Default for ServerParams {
    fn default() -> Self {
        ServerParams {
            model: None,
            ctx: 0,
            parallel: -1,
            kv_unified: None,
            kv_unified_per_slot: None,
            cache_type_k: "f16".into(),
            cache_type_v: "f16".into(),
            flash_attn: FlashAttn::Auto,
            batch: 2048,
            ubatch: 512,
            gpu_layers: GpuLayers::Auto,
            swa_full: false,
            no_kv_offload: false,
            draft_model: None,
            draft_cache_type_k: None,
            draft_cache_type_v: None,
            draft_gpu_layers: None,
            mmproj: None,
            cache_ram_mib: 8192,
            other_flags: Vec::new(),
        }
    }
}

impl ServerParams {
    /// Slots: `-np`, or 4 when auto.
    pub fn n_slots(&self) -> u64 {
        if self.parallel > 0 {
            self.parallel as u64
        } else {
            4
        }
    }

    /// Whether the KV cache is one pool shared by all slots.
    pub fn unified(&self) -> bool {
        self.kv_unified.unwrap_or(self.parallel <= 0)
    }
}

/// A command line infermon could not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// llama-server has no such flag.
    #[error("unknown llama-server flag \"{0}\" (not in this llama-server's --help)")]
    Unknown(String),
    /// A word that is not a flag where a flag was expected.
    #[error("unexpected argument \"{0}\": expected a llama-server flag")]
    Unexpected(String),
    /// The flag needs a value.
    #[error("llama-server flag \"{0}\" needs a value")]
    MissingValue(String),
    /// The value is not valid.
    #[error("invalid value \"{value}\" for {flag}: expected {expected}")]
    BadValue {
        /// Flag.
        flag: String,
        /// Value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

fn lookup(flag: &str) -> Option<(&'static str, Arity)> {
    FLAGS
        .iter()
        .find(|(names, _)| names.contains(&flag))
        .map(|(names, arity)| (names[0], *arity))
}

const KV_TYPES: &[&str] = &[
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
];

fn num(flag: &str, v: &str) -> Result<i64, ParamsError> {
    v.parse().map_err(|_| ParamsError::BadValue {
        flag: flag.into(),
        value: v.into(),
        expected: "an integer",
    })
}

fn kv_type(flag: &str, v: &str) -> Result<String, ParamsError> {
    let lower = v.to_ascii_lowercase();
    if KV_TYPES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(ParamsError::BadValue {
            flag: flag.into(),
            value: v.into(),
            expected: "one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1",
        })
    }
}

fn gpu_layers(flag: &str, v: &str) -> Result<GpuLayers, ParamsError> {
    match v {
        "auto" => Ok(GpuLayers::Auto),
        "all" => Ok(GpuLayers::All),
        n => match n.parse::<i64>() {
            Ok(x) if x < 0 => Ok(GpuLayers::All),
            Ok(x) => Ok(GpuLayers::Count(x as u32)),
            Err(_) => Err(ParamsError::BadValue {
                flag: flag.into(),
                value: v.into(),
                expected: "a number of layers, auto or all",
            }),
        },
    }
}

/// Parses llama-server arguments (without the program name). Every unknown flag is collected
/// into the error list; the settings are returned with them so a caller can still estimate.
pub fn parse_args(args: &[String]) -> (ServerParams, Vec<ParamsError>) {
    let mut p = ServerParams::default();
    let mut errors = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let raw = &args[i];
        i += 1;
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
            _ => (raw.clone(), None),
        };
        if !flag.starts_with('-') {
            errors.push(ParamsError::Unexpected(raw.clone()));
            continue;
        }
        let Some((canonical, arity)) = lookup(&flag) else {
            errors.push(ParamsError::Unknown(raw.clone()));
            continue;
        };
        let value = match (arity, inline) {
            (_, Some(v)) => Some(v),
            (Arity::None, None) => None,
            (Arity::Value, None) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    Some(v.clone())
                }
                None => {
                    errors.push(ParamsError::MissingValue(flag.clone()));
                    continue;
                }
            },
            (Arity::Optional, None) => match args.get(i) {
                Some(v) if !v.starts_with('-') => {
                    i += 1;
                    Some(v.clone())
                }
                _ => None,
            },
        };
        if let Err(e) = apply(&mut p, canonical, &flag, value.as_deref()) {
            errors.push(e);
        }
    }
    (p, errors)
}

fn apply(
    p: &mut ServerParams,
    canonical: &str,
    flag: &str,
    v: Option<&str>,
) -> Result<(), ParamsError> {
    let val = || v.ok_or_else(|| ParamsError::MissingValue(flag.to_string()));
    match canonical {
        "-m" => p.model = Some(PathBuf::from(val()?)),
        "-c" => {
            let n = num(flag, val()?)?;
            p.ctx = u64::try_from(n).map_err(|_| ParamsError::BadValue {
                flag: flag.into(),
                value: n.to_string(),
                expected: "0 or a positive context size",
            })?;
        }
        "-np" => p.parallel = num(flag, val()?)?,
        "-b" => p.batch = num(flag, val()?)?.max(1) as u64,
        "-ub" => p.ubatch = num(flag, val()?)?.max(1) as u64,
        "-ctk" => p.cache_type_k = kv_type(flag, val()?)?,
        "-ctv" => p.cache_type_v = kv_type(flag, val()?)?,
        "--spec-draft-type-k" => p.draft_cache_type_k = Some(kv_type(flag, val()?)?),
        "--spec-draft-type-v" => p.draft_cache_type_v = Some(kv_type(flag, val()?)?),
        "-ngl" => p.gpu_layers = gpu_layers(flag, val()?)?,
        "--spec-draft-ngl" => p.draft_gpu_layers = Some(gpu_layers(flag, val()?)?),
        "--spec-draft-model" => p.draft_model = Some(PathBuf::from(val()?)),
        "-mm" => p.mmproj = Some(PathBuf::from(val()?)),
        "--swa-full" => p.swa_full = true,
        "-cram" => p.cache_ram_mib = num(flag, val()?)?,
        "--kv-unified-per-slot" => p.kv_unified_per_slot = Some(num(flag, val()?)?.max(0) as u64),
        "-kvu" => p.kv_unified = Some(!matches!(flag, "-no-kvu" | "--no-kv-unified")),
        "-kvo" => p.no_kv_offload = matches!(flag, "-nkvo" | "--no-kv-offload"),
        "-fa" => {
            p.flash_attn = match v.unwrap_or("on") {
                "on" | "1" | "true" => FlashAttn::On,
                "off" | "0" | "false" => FlashAttn::Off,
                "auto" => FlashAttn::Auto,
                other => {
                    return Err(ParamsError::BadValue {
                        flag: flag.into(),
                        value: other.into(),
                        expected: "on, off or auto",
                    })
                }
            }
        }
        _ => p.other_flags.push(match v {
            Some(v) => format!("{flag} {v}"),
            None => flag.to_string(),
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_command_from_the_issue() {
        let (p, e) = parse_args(&args(
            "-m MODEL.gguf -c 8192 -np 4 -ctk q8_0 -ctv q8_0 -fa on -md DRAFT.gguf --port 8080 -t 8",
        ));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(p.ctx, 8192);
        assert_eq!(p.n_slots(), 4);
        assert!(!p.unified());
        assert_eq!(p.cache_type_k, "q8_0");
        assert_eq!(p.flash_attn, FlashAttn::On);
        assert_eq!(p.draft_model, Some(PathBuf::from("DRAFT.gguf")));
        assert_eq!(p.other_flags, vec!["--port 8080", "-t 8"]);
    }

    #[test]
    fn defaults_and_auto_slots_are_unified() {
        let (p, e) = parse_args(&args("-m x.gguf"));
        assert!(e.is_empty());
        assert_eq!((p.n_slots(), p.unified(), p.ubatch), (4, true, 512));
        let (p, _) = parse_args(&args("-m x.gguf -np 2 -kvu"));
        assert!(p.unified());
        let (p, _) = parse_args(&args("-m x.gguf -no-kvu"));
        assert!(!p.unified());
    }

    #[test]
    fn unknown_and_bad_flags_are_reported() {
        let (_, e) = parse_args(&args("-m x.gguf --ctx 4096 -ctk q9_9 -c"));
        let msgs: Vec<String> = e.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "unknown llama-server flag \"--ctx\" (not in this llama-server's --help)",
                "unexpected argument \"4096\": expected a llama-server flag",
                "invalid value \"q9_9\" for -ctk: expected one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1",
                "llama-server flag \"-c\" needs a value",
            ]
        );
    }

    #[test]
    fn inline_values_and_optional_fa() {
        let (p, e) = parse_args(&args("--ctx-size=1024 -fa -ngl 99 --metrics"));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(p.ctx, 1024);
        assert_eq!(p.flash_attn, FlashAttn::On);
        assert_eq!(p.gpu_layers, GpuLayers::Count(99));
    }

    #[test]
    fn flags_table_matches_help() {
        let help = include_str!("../tests/fixtures/llama-server-help.txt");
        for (names, _) in FLAGS {
            for n in *names {
                assert!(help.contains(n), "{n} not in help");
            }
        }
        for must in [
            "-c",
            "-np",
            "-ctk",
            "-ctv",
            "-fa",
            "-md",
            "-ngl",
            "-kvu",
            "--swa-full",
            "-ub",
        ] {
            assert!(lookup(must).is_some(), "{must} missing from table");
        }
    }
}
