//! The comparison on constructed rows: nvidia-smi's CSV as the driver prints it (format
//! written from its documentation and an H100's output, not recorded here: no NVIDIA GPU is
//! lent to this project's tests) against snapshots built by hand.

use infermon_model::raw::GpuVendor;
use infermon_model::GpuFigures;

use super::compare::*;

const SMI: &str = "\
index, uuid, utilization.gpu [%], power.draw [W], memory.used [MiB], memory.total [MiB], clocks.current.sm [MHz], temperature.gpu, clocks_event_reasons.active
0, GPU-aaaa, 37 %, 312.45 W, 40960 MiB, 143771 MiB, 1980 MHz, 54, 0x0000000000000004
1, GPU-bbbb, [N/A], [N/A], 1 MiB, 143771 MiB, 345 MHz, 31, 0x0000000000000001
";

fn gpu(id: &str) -> GpuFigures {
    let mut g: GpuFigures = serde_json::from_value(serde_json::json!({
        "vendor": "nvidia", "index": 0, "id": id, "name": null,
        "utilization_ratio": null, "memory_busy_ratio": null,
        "vram_used_bytes": null, "vram_total_bytes": null,
        "gtt_used_bytes": null, "gtt_total_bytes": null,
        "power_watts": null, "power_limit_watts": null, "energy_joules_total": null,
        "temperature_celsius": null, "clock_hertz": null, "clock_max_hertz": null,
        "memory_clock_hertz": null, "thermal": null, "processes": [], "unavailable": []
    }))
    .expect("a GpuFigures from JSON");
    g.vendor = GpuVendor::Nvidia;
    g
}

fn agreeing() -> GpuFigures {
    let mut g = gpu("GPU-aaaa");
    g.utilization_ratio = Some(0.40);
    g.power_watts = Some(300.0);
    g.vram_used_bytes = Some(41_200 * 1_048_576);
    g.vram_total_bytes = Some(143_771 * 1_048_576);
    g.clock_hertz = Some(1_980e6);
    g.temperature_celsius = Some(55.0);
    g.thermal = Some(infermon_model::thermal::classify_nvidia(0x4));
    g
}

#[test]
fn parses_units_and_not_available() {
    let rows = parse_smi(SMI).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].power_watts, Some(312.45));
    assert_eq!(rows[0].utilization_percent, Some(37.0));
    assert_eq!(rows[0].event_mask, Some(4));
    assert_eq!(rows[1].power_watts, None);
    assert_eq!(rows[1].utilization_percent, None);
}

#[test]
fn bad_rows_are_named() {
    let e = parse_smi("a,b\n").unwrap_err();
    assert!(e.contains("expected 9"), "{e}");
    let bad = SMI.replace("312.45 W", "lots W");
    let e = parse_smi(&bad).unwrap_err();
    assert!(e.contains("\"lots W\""), "{e}");
    let bad = SMI.replace("0x0000000000000004", "4");
    assert!(parse_smi(&bad).unwrap_err().contains("not 0x-prefixed"));
}

#[test]
fn agreeing_figures_pass_and_a_wrong_one_fails() {
    let rows = parse_smi(SMI).unwrap();
    let mut t = Tallies::new();
    let problems = add_round(&mut t, &[agreeing()], &rows[..1]);
    assert!(problems.is_empty());
    let figs = &t["GPU-aaaa"];
    assert_eq!(figs.len(), 7);
    for (f, tally) in figs {
        assert!(tally.passed(), "{f:?} {tally:?}");
    }
    // Power 25 % low: beyond ±10 %.
    let mut g = agreeing();
    g.power_watts = Some(234.0);
    let mut t = Tallies::new();
    add_round(&mut t, &[g], &rows[..1]);
    assert!(!t["GPU-aaaa"][&Figure::Power].passed());
    // Reasons differ: sw power cap (0x4) against none.
    let mut g = agreeing();
    g.thermal = Some(infermon_model::thermal::classify_nvidia(0));
    let mut t = Tallies::new();
    add_round(&mut t, &[g], &rows[..1]);
    assert!(!t["GPU-aaaa"][&Figure::ClockEvents].passed());
}

#[test]
fn a_figure_on_one_side_only_fails_and_a_missing_gpu_is_named() {
    let rows = parse_smi(SMI).unwrap();
    let mut g = agreeing();
    g.temperature_celsius = None;
    let mut t = Tallies::new();
    let problems = add_round(&mut t, &[g], &rows);
    assert!(!t["GPU-aaaa"][&Figure::Temperature].passed());
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("GPU-bbbb"), "{problems:?}");
}

#[test]
fn one_disagreeing_round_in_five_is_tolerated() {
    let rows = parse_smi(SMI).unwrap();
    let mut t = Tallies::new();
    for i in 0..5 {
        let mut g = agreeing();
        if i == 2 {
            g.clock_hertz = Some(1_410e6); // a clock step between the two reads
        }
        add_round(&mut t, &[g], &rows[..1]);
    }
    let c = &t["GPU-aaaa"][&Figure::ClockSm];
    assert_eq!((c.rounds, c.agreed), (5, 4));
    assert!(c.passed());
}

#[test]
fn energy_against_integrated_power() {
    // 300 W for 10 s then 100 W for 10 s, by trapezoids: 3000 + 2000 (the ramp) + 1000.
    let readings = [(0.0, 300.0), (10.0, 300.0), (20.0, 100.0), (30.0, 100.0)];
    assert_eq!(integrate(&readings), 6000.0);
    let e = EnergyCheck {
        counter_joules: 6300.0,
        integrated_joules: 6000.0,
    };
    assert!(e.passed());
    let e = EnergyCheck {
        counter_joules: 7000.0,
        integrated_joules: 6000.0,
    };
    assert!(!e.passed());
}
