//! `infermon fit`: memory estimate for a llama-server command line, or for a running server
//! compared with what it really uses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use infermon_fit::report::{estimate_fields, table, what_ifs};
use infermon_fit::units::{format_bytes, parse_bytes};
use infermon_fit::{compare, estimate, largest_context, parse_args, ModelInfo, ServerParams};

use crate::cli::FitArgs;

fn load(path: &Path) -> anyhow::Result<ModelInfo> {
    infermon_fit::from_gguf::load(path)
        .map_err(|e| anyhow::anyhow!("cannot read model \"{}\": {e}", path.display()))
}

pub fn run(args: FitArgs) -> anyhow::Result<ExitCode> {
    let budget = args
        .budget
        .as_deref()
        .map(parse_bytes)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Some(url) = &args.against {
        return against(url, &args, budget);
    }
    let (params, errors) = parse_args(&args.server_args);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("infermon fit: {e}");
        }
        bail!(
            "{} llama-server argument(s) not understood (see above)",
            errors.len()
        );
    }
    let Some(model) = params.model.clone() else {
        bail!("no model given: pass llama-server's own flags, e.g. `infermon fit -m MODEL.gguf -c 8192 -np 4`");
    };
    report(&model, &params, &args, budget, None)
}

fn report(
    model: &Path,
    p: &ServerParams,
    args: &FitArgs,
    budget: Option<u64>,
    measured: Option<Measured>,
) -> anyhow::Result<ExitCode> {
    let info = load(model)?;
    let draft = p.draft_model.as_deref().map(load).transpose()?;
    let e = estimate(&info, draft.as_ref(), p, args.gpu)?;
    let ifs = what_ifs(&info, draft.as_ref(), p, args.gpu, &e);
    let largest = budget.map(|b| largest_context(&info, draft.as_ref(), p, args.gpu, b));
    let cmp = measured
        .as_ref()
        .and_then(|m| compare(e.total_bytes, m.rss_bytes));
    // Memory this node has free now (what is already loaded is already subtracted).
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| infermon_hw::parse_meminfo(&t).ok())
        .map(|m| m.available_bytes);
    // A server already running uses its memory: only a new one must fit in what is free.
    let fits_now = available
        .filter(|_| measured.is_none())
        .map(|a| e.total_bytes <= a);
    if args.json {
        let mut v = serde_json::json!({
            "model": model,
            "params": p,
            "what_if": ifs,
            "budget_bytes": budget,
            "largest_context_in_budget": largest.flatten(),
            "node_available_bytes": available,
            "fits_now": fits_now,
            "measured": measured,
            "comparison": cmp,
        });
        if let serde_json::Value::Object(m) = &mut v {
            m.extend(estimate_fields(&e));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let name = model
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    print!("{}", table(&name, &info, p, &e, &ifs));
    if let (Some(b), Some(l)) = (budget, largest) {
        match l {
            Some(ctx) => println!(
                "\nlargest context within {}: -c {ctx} ({} slot(s))",
                format_bytes(b),
                p.n_slots()
            ),
            None => println!(
                "\nnothing fits within {}, not even 256 cells",
                format_bytes(b)
            ),
        }
    }
    if let (Some(a), Some(fits)) = (available, fits_now) {
        let diff = a.abs_diff(e.total_bytes);
        println!(
            "\nthis node now: {} available (MemAvailable) → {}",
            format_bytes(a),
            if fits {
                format!("fits, {} to spare", format_bytes(diff))
            } else {
                format!("does NOT fit, short by {}", format_bytes(diff))
            }
        );
    }
    if let (Some(m), Some(c)) = (&measured, cmp) {
        println!(
            "\nmeasured (pid {}): RSS {}, PSS {}; estimate {} → error {:+.1} % ({}{})",
            m.pid,
            format_bytes(m.rss_bytes),
            m.pss_bytes
                .map(format_bytes)
                .unwrap_or_else(|| "n/a".into()),
            format_bytes(c.estimated_bytes),
            c.error_percent,
            if c.error_bytes < 0 { "-" } else { "+" },
            format_bytes(c.error_bytes.unsigned_abs())
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, serde::Serialize)]
struct Measured {
    pid: u32,
    rss_bytes: u64,
    pss_bytes: Option<u64>,
    args: Vec<String>,
}

fn against(url: &str, args: &FitArgs, budget: Option<u64>) -> anyhow::Result<ExitCode> {
    let url = url.trim_end_matches('/');
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let props: serde_json::Value = rt.block_on(async {
        let r = infermon_tls::client()
            .timeout(Duration::from_secs(5))
            .build()?
            .get(format!("{url}/props"))
            .send()
            .await
            .with_context(|| format!("cannot reach llama-server at \"{url}\""))?;
        if !r.status().is_success() {
            bail!("\"{url}/props\" answered HTTP {}", r.status().as_u16());
        }
        Ok::<_, anyhow::Error>(r.json().await?)
    })?;
    let root = Path::new("/");
    let port = url.rsplit(':').next().unwrap_or("");
    let found = infermon_engines::discover::discover(root)
        .into_iter()
        .find(|d| d.url.rsplit(':').next() == Some(port))
        .with_context(|| {
            format!("no local llama-server process serves \"{url}\" (only local servers can be measured)")
        })?;
    let server_args: Vec<String> = found.args.iter().skip(1).cloned().collect();
    let (mut params, errors) = parse_args(&server_args);
    for e in &errors {
        eprintln!("infermon fit: server pid {}: {e}", found.pid);
    }
    if let Some(path) = props.get("model_path").and_then(|v| v.as_str()) {
        params.model = Some(PathBuf::from(path));
    }
    let model = params
        .model
        .clone()
        .context("the server did not say which model it runs (/props has no model_path)")?;
    let mem = infermon_hw::read_process(root, found.pid)
        .with_context(|| format!("cannot read memory of pid {}", found.pid))?;
    let measured = Measured {
        pid: found.pid,
        rss_bytes: mem.rss_bytes,
        pss_bytes: mem.pss_bytes,
        args: server_args,
    };
    report(&model, &params, args, budget, Some(measured))
}
