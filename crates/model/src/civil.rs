//! Unix time to a UTC calendar date and time of day, for text the user reads (logs, reports).

/// `ts_ms` (ms since the Unix epoch) as UTC `[year, month, day, hour, minute, second]`,
/// proleptic Gregorian (days to a date by 400-year eras, H. Hinnant's method).
pub fn utc_fields(ts_ms: i64) -> [i64; 6] {
    let secs = ts_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    [year, month, day, rem / 3600, rem % 3600 / 60, rem % 60]
}

#[cfg(test)]
mod tests {
    use super::utc_fields;

    #[test]
    fn known_instants() {
        assert_eq!(utc_fields(0), [1970, 1, 1, 0, 0, 0]);
        // 2000-02-29T23:59:59Z, a leap day in a century year divisible by 400.
        assert_eq!(utc_fields(951_868_799_000), [2000, 2, 29, 23, 59, 59]);
        // Before the epoch.
        assert_eq!(utc_fields(-1_000), [1969, 12, 31, 23, 59, 59]);
    }
}
