//! Pressure stall information, `/proc/pressure/{memory,cpu,io}` (Linux 4.20+, `CONFIG_PSI`).

use infermon_model::raw::{PressureRaw, Psi, Reading};

use crate::error::HwError;
use crate::fsread::read_parsed;
use crate::paths::{self, Paths};

/// Parses one PSI file (`/proc/pressure/{cpu,memory,io}`):
/// `some avg10=.. avg60=.. avg300=.. total=<µs>` and, optionally, the same for `full`.
pub fn parse_psi(text: &str) -> Result<Psi, HwError> {
    let path = paths::canonical(paths::PROC_PRESSURE);
    if text.trim().is_empty() {
        return Err(HwError::Empty { path });
    }
    let mut some = None;
    let mut full = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut tokens = line.split_whitespace();
        let kind = tokens.next().unwrap_or_default();
        let slot = match kind {
            "some" => &mut some,
            "full" => &mut full,
            _ => {
                return Err(HwError::malformed(
                    &path,
                    format!("line \"{line}\": expected it to start with \"some\" or \"full\""),
                ))
            }
        };
        let mut avg10 = None;
        let mut total = None;
        for token in tokens {
            let Some((key, value)) = token.split_once('=') else {
                return Err(HwError::malformed(
                    &path,
                    format!("line \"{line}\": expected key=value, found \"{token}\""),
                ));
            };
            let field = || format!("{kind} {key}");
            match key {
                "avg10" => {
                    let v: f64 = value.parse().map_err(|_| HwError::BadField {
                        path: path.clone(),
                        field: field(),
                        value: value.to_string(),
                        expected: "a percentage",
                    })?;
                    if !v.is_finite() || v < 0.0 {
                        return Err(HwError::BadField {
                            path: path.clone(),
                            field: field(),
                            value: value.to_string(),
                            expected: "a percentage",
                        });
                    }
                    avg10 = Some(v);
                }
                "total" => {
                    total = Some(value.parse::<u64>().map_err(|_| HwError::BadField {
                        path: path.clone(),
                        field: field(),
                        value: value.to_string(),
                        expected: "a non-negative integer number of microseconds",
                    })?);
                }
                _ => {}
            }
        }
        let missing = |what: &str| HwError::MissingField {
            path: path.clone(),
            field: format!("{kind} {what}"),
        };
        *slot = Some((
            avg10.ok_or_else(|| missing("avg10"))?,
            total.ok_or_else(|| missing("total"))?,
        ));
    }
    let (some_avg10, some_total_us) = some.ok_or_else(|| HwError::MissingField {
        path: path.clone(),
        field: "some".into(),
    })?;
    Ok(Psi {
        some_avg10,
        some_total_us,
        full_avg10: full.map(|(avg, _)| avg),
        full_total_us: full.map(|(_, total)| total),
    })
}

/// The message when no PSI file exists at all.
pub(crate) const PSI_UNAVAILABLE: &str = "PSI not available (kernel without CONFIG_PSI or psi=0)";

/// `root/proc/pressure/{memory,cpu,io}`: a missing file is `None` for that resource; all
/// missing is unavailable; any other failure makes the reading unavailable with its reason.
pub(crate) fn read_pressure(paths: &Paths) -> Reading<PressureRaw> {
    match read_pressure_files(paths) {
        Ok(p) if p.memory.is_none() && p.cpu.is_none() && p.io.is_none() => {
            Reading::unavailable(format!(
                "{}: {PSI_UNAVAILABLE}",
                paths.at(paths::PROC_PRESSURE).display()
            ))
        }
        other => Reading::from_result(other),
    }
}

/// The three PSI files, each `None` when absent.
fn read_pressure_files(paths: &Paths) -> Result<PressureRaw, HwError> {
    let read_one = |resource: &str| -> Result<Option<Psi>, HwError> {
        match read_parsed(&paths.pressure(resource), parse_psi) {
            Ok(psi) => Ok(Some(psi)),
            Err(e) if psi_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    };
    Ok(PressureRaw {
        memory: read_one("memory")?,
        cpu: read_one("cpu")?,
        io: read_one("io")?,
    })
}

/// A PSI file that does not exist, or exists but is switched off (`EOPNOTSUPP`).
fn psi_absent(e: &HwError) -> bool {
    match e {
        HwError::Io { error, .. } => {
            #[cfg(unix)]
            let switched_off = error.raw_os_error() == Some(libc::EOPNOTSUPP);
            #[cfg(not(unix))]
            let switched_off = false;
            error.kind() == std::io::ErrorKind::NotFound || switched_off
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi() {
        let p = parse_psi(
            "some avg10=65.14 avg60=34.52 avg300=26.23 total=156535591\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
        assert_eq!(p.some_avg10, 65.14);
        assert_eq!(p.some_total_us, 156535591);
        assert_eq!(p.full_avg10, Some(0.0));
        assert_eq!(p.full_total_us, Some(0));
        // cpu before Linux 5.13 has no "full" line.
        let p = parse_psi("some avg10=1.50 avg60=0.00 avg300=0.00 total=42\n").unwrap();
        assert_eq!((p.full_avg10, p.full_total_us), (None, None));
    }

    #[test]
    fn psi_errors() {
        let e = parse_psi("some avg10=abc avg60=0.00 avg300=0.00 total=1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/pressure: field \"some avg10\" has value \"abc\": expected a percentage"
        );
        let e = parse_psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap_err();
        assert_eq!(e.to_string(), "/proc/pressure: field \"some\" is missing");
        let e = parse_psi("garbage\n").unwrap_err();
        assert!(e.to_string().contains("line \"garbage\""), "{e}");
        let e = parse_psi("some avg10=1.0 total\n").unwrap_err();
        assert!(e.to_string().contains("expected key=value"), "{e}");
        let e = parse_psi("some avg10=1.0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/pressure: field \"some total\" is missing"
        );
        assert!(parse_psi("some avg10=NaN total=1\n").is_err());
    }
}
