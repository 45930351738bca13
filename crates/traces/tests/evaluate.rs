//! The diagnosis targets over every labelled trace (issue: detection delay <= 60 s after onset,
//! change point dated within 10 s, <= 1 false alarm per 24 h of diurnal load, none on the
//! workload increase or other quiet traces, no symptom without its real cause).

use infermon_traces::eval::{by_kind, report, score};

#[test]
fn every_labelled_fault_is_found_in_time_with_its_cause_and_quiet_traces_stay_quiet() {
    let scores: Vec<_> = infermon_traces::all()
        .iter()
        .map(|t| score(t).unwrap())
        .collect();
    let text = report(&scores);
    eprintln!("{text}");
    for k in by_kind(&scores) {
        assert_eq!(k.found, k.expected, "{} missed\n{text}", k.kind);
        assert!(k.max_delay_s.unwrap() <= 60.0, "{} delay\n{text}", k.kind);
        assert!(k.max_dating_s.unwrap() <= 10.0, "{} dating\n{text}", k.kind);
        assert_eq!(k.cause_ok, k.found, "{} cause\n{text}", k.kind);
    }
    for s in &scores {
        assert!(
            s.wrong_causes.is_empty(),
            "{}: wrong causes\n{text}",
            s.name
        );
        let per_day = s.false_alarms.len() as f64 * 24.0 / s.hours;
        if s.name.contains("diurnal") {
            assert!(
                per_day <= 1.0,
                "{}: {per_day} false alarms per 24 h\n{text}",
                s.name
            );
        } else {
            assert!(
                s.false_alarms.is_empty(),
                "{}: false alarms\n{text}",
                s.name
            );
        }
    }
}
