//! The detectors over small hand-built traces (constructed, not recorded: each row's figures
//! are written out by the generator closures below).

use infermon_detect::trace::{header, parse, write_rows};
use infermon_detect::{replay, Kind, Severity};

const BASE: &str = "t_s,model,requests_running,requests_waiting,prompt_tokens_per_s,\
generation_tokens_per_s,ttft_p50_ms,tpot_p50_ms,gpu_util,gpu_clock_mhz,power_w,gpu_temp_c,\
thermal_state,kv_usage,swap_in_pages_per_s,mem_available_bytes";

/// A steady row with a little deterministic wobble (±2 %).
fn row(i: usize, ttft: f64, tpot: f64, clock: f64, temp: f64, state: &str, extra: &str) -> String {
    let w = 1.0 + 0.02 * ((i * 7 % 5) as f64 - 2.0) / 2.0;
    let running = 2.0;
    let gen = running * 1000.0 / (tpot * w);
    format!(
        "{},m,{running},0,500,{gen:.2},{:.1},{:.2},95,{clock},300,{temp},{state},0.4,0,30000000000{extra}",
        i * 2,
        ttft * w,
        tpot * w
    )
}

#[test]
fn a_tpot_rise_at_the_same_load_is_reported_with_no_cause() {
    let mut csv = vec![BASE.to_string()];
    for i in 0..600 {
        let tpot = if i < 400 { 20.0 } else { 23.0 }; // +15 % from t = 800 s
        csv.push(row(i, 150.0, tpot, 2500.0, 65.0, "Normal", ""));
    }
    let trace = parse(&csv.join("\n")).unwrap();
    let r = replay(&trace);
    let tpot: Vec<_> = r
        .observations
        .iter()
        .filter(|o| o.kind == Kind::TpotRegression)
        .collect();
    assert_eq!(tpot.len(), 1, "{:#?}", r.observations);
    let o = tpot[0];
    assert!((o.start_s - 800.0).abs() <= 10.0, "onset {}", o.start_s);
    assert!(o.confirmed_s - 800.0 <= 60.0, "confirmed {}", o.confirmed_s);
    assert!(o.cause.is_none());
    assert!(
        o.action.contains("No hardware or engine pattern"),
        "{}",
        o.action
    );
    assert_eq!(o.subject, "model:m@trace");
    // Throughput falls with it; nothing else is reported.
    for o in &r.observations {
        assert!(
            matches!(
                o.kind,
                Kind::TpotRegression | Kind::ThroughputDrop | Kind::EfficiencyDrift
            ),
            "unexpected {o:#?}"
        );
    }
}

#[test]
fn thermal_throttling_explains_the_symptoms() {
    let mut csv = vec![BASE.to_string()];
    for i in 0..600 {
        let hot = i >= 300;
        let (tpot, clock, temp, state) = if hot {
            (27.0, 1750.0, 87.0, "Serious")
        } else {
            (20.0, 2500.0, 70.0, "Normal")
        };
        csv.push(row(i, 150.0, tpot, clock, temp, state, ""));
    }
    let r = replay(&parse(&csv.join("\n")).unwrap());
    let thermal = r
        .observations
        .iter()
        .find(|o| o.kind == Kind::ThermalThrottling)
        .expect("thermal_throttling");
    assert_eq!(thermal.start_s, 600.0);
    assert!(
        thermal.action.contains("2500 to 1750 MHz"),
        "{}",
        thermal.action
    );
    let tpot = r
        .observations
        .iter()
        .find(|o| o.kind == Kind::TpotRegression)
        .expect("tpot_regression");
    assert_eq!(
        tpot.cause.as_ref().map(|c| c.kind),
        Some(Kind::ThermalThrottling)
    );
    assert!(
        tpot.action.contains("Cause: thermal_throttling"),
        "{}",
        tpot.action
    );
}

#[test]
fn cpu_contention_names_the_process() {
    let h = format!("{BASE},cpu_util,cpu_count,top_process");
    let mut csv = vec![h];
    for i in 0..500 {
        let busy = i >= 300;
        let (ttft, tpot, extra) = if busy {
            (450.0, 24.0, ",0.98,2,ffmpeg:4242:1.8")
        } else {
            (150.0, 20.0, ",0.55,2,bash:17:0.01")
        };
        csv.push(row(i, ttft, tpot, 2500.0, 65.0, "Normal", extra));
    }
    let r = replay(&parse(&csv.join("\n")).unwrap());
    let cpu = r
        .observations
        .iter()
        .find(|o| o.kind == Kind::CpuContention)
        .expect("cpu_contention");
    assert!(
        cpu.action.contains("`ffmpeg` (pid 4242) 90 %"),
        "{}",
        cpu.action
    );
    let ttft = r
        .observations
        .iter()
        .find(|o| o.kind == Kind::TtftRegression)
        .expect("ttft_regression");
    assert_eq!(ttft.start_s, 600.0);
    assert_eq!(ttft.severity, Severity::Critical, "×3 is critical");
    assert_eq!(
        ttft.cause.as_ref().map(|c| c.kind),
        Some(Kind::CpuContention)
    );
    assert!(ttft.action.contains("ffmpeg"), "{}", ttft.action);
}

#[test]
fn doubling_the_load_is_not_a_fault() {
    let mut csv = vec![BASE.to_string()];
    for i in 0..900 {
        let running = if i < 450 { 2.0 } else { 4.0 };
        let tpot = 20.0 * (1.0 + 0.06 * (running - 1.0));
        let gen = running * 1000.0 / tpot;
        let power = 150.0 + 40.0 * running;
        csv.push(format!(
            "{},m,{running},0,500,{gen:.2},150,{tpot:.2},{},2500,{power},70,Normal,0.4,0,30000000000",
            i * 2,
            40.0 + 15.0 * running
        ));
    }
    let r = replay(&parse(&csv.join("\n")).unwrap());
    assert!(r.observations.is_empty(), "{:#?}", r.observations);
}

#[test]
fn a_malformed_row_names_its_line_and_column() {
    let csv = format!(
        "{BASE}\n0,m,1,0,1,1,1,1,1,1,1,1,Normal,0.1,0,1\n2,m,1,0,1,1,1,1,1,1,1,1,Hot,0.1,0,1"
    );
    let e = parse(&csv).unwrap_err();
    assert_eq!((e.line, e.column.as_str()), (3, "thermal_state"));
    assert!(
        e.to_string().contains("\"Hot\" is not a thermal state"),
        "{e}"
    );
    let e = parse(&format!("{BASE}\n0,m,1,0,1,1,1,1,1,1,1,1,Normal,1.5,0,1")).unwrap_err();
    assert_eq!((e.line, e.column.as_str()), (2, "kv_usage"));
    let e = parse(&format!("{BASE}\n0,m,x,0,1,1,1,1,1,1,1,1,Normal,0.5,0,1")).unwrap_err();
    assert!(
        e.to_string()
            .contains("requests_running: \"x\" is not a finite number"),
        "{e}"
    );
}

#[test]
fn missing_columns_switch_detectors_off_and_say_so() {
    let t = parse("t_s,model,tpot_p50_ms\n0,m,20\n2,m,21").unwrap();
    let off: Vec<Kind> = t.disabled.iter().map(|d| d.0).collect();
    assert!(off.contains(&Kind::KvSaturation));
    assert!(!off.contains(&Kind::TpotRegression));
    let why = &t
        .disabled
        .iter()
        .find(|d| d.0 == Kind::SwapStorm)
        .unwrap()
        .1;
    assert_eq!(why, "no column swap_in_pages_per_s");
}

#[test]
fn written_rows_parse_back_to_the_same_frames() {
    let mut csv = vec![format!(
        "{BASE},cpu_util,cpu_count,top_process,events,engine_up"
    )];
    for i in 0..5 {
        csv.push(row(
            i,
            150.0,
            20.0,
            2500.0,
            65.0,
            "Fair",
            ",0.5,8,\"my, proc:12:0.5\",loaded:a;unloaded:b,1",
        ));
    }
    let t = parse(&csv.join("\n")).unwrap();
    let mut out = vec![header()];
    for f in &t.frames {
        out.extend(write_rows(f));
    }
    let back = parse(&out.join("\n")).unwrap();
    assert_eq!(back.frames.len(), t.frames.len());
    for (a, b) in t.frames.iter().zip(&back.frames) {
        assert_eq!(a.node.top_processes, b.node.top_processes);
        assert_eq!(a.engines[0].events, b.engines[0].events);
        assert_eq!(a.node.thermal_state, b.node.thermal_state);
        assert!(
            (a.engines[0].tpot_p50_ms.unwrap() - b.engines[0].tpot_p50_ms.unwrap()).abs() < 1e-3
        );
    }
}
