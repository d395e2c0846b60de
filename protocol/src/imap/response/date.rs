//! INTERNALDATE's `date-time` form (RFC 3501 9): `"23-Nov-2026 10:00:00 +0000"`, always in UTC.
//!
//! The calendar arithmetic is Howard Hinnant's `civil_from_days`, so this crate needs no date
//! library for the one format it writes.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends `time` as a quoted IMAP `date-time` in UTC (seconds truncated toward the past).
pub fn push_internal_date(out: &mut Vec<u8>, time: SystemTime) {
    let seconds = seconds_since_epoch(time);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+05}")
    };
    let text = format!(
        "\"{day:02}-{}-{year} {:02}:{:02}:{:02} +0000\"",
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    out.extend_from_slice(text.as_bytes());
}

/// Whole seconds since 1970, rounded down (so a time before 1970 is never a second late).
fn seconds_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of a day count from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn text(time: SystemTime) -> String {
        let mut out = Vec::new();
        push_internal_date(&mut out, time);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn dates_are_written_in_utc() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(text(at(1_795_428_000)), "\"23-Nov-2026 10:00:00 +0000\"");
        assert_eq!(text(at(0)), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(text(at(951_782_400)), "\"29-Feb-2000 00:00:00 +0000\"");
        assert_eq!(text(at(1_772_445_599)), "\"02-Mar-2026 09:59:59 +0000\"");
        assert_eq!(text(at(4_102_444_800)), "\"01-Jan-2100 00:00:00 +0000\"");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(text(before), "\"31-Dec-1969 23:59:59 +0000\"");
        assert_eq!(
            text(UNIX_EPOCH - Duration::from_secs(86_400 * 365)),
            "\"01-Jan-1969 00:00:00 +0000\""
        );
    }
}
