//! The asctime date of an mbox `From ` line (`From sender Mon Jan  1 00:00:00 2024`), which is
//! the message's internal date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `Mon Jan  1 00:00:00 2024` (UTC).
pub fn format(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Parses the date at the end of a `From ` line; `None` if there is none.
pub fn parse_from_line(envelope: &str) -> Option<SystemTime> {
    let words: Vec<&str> = envelope.split_whitespace().collect();
    // Find "Mmm d hh:mm:ss yyyy" anywhere after the sender.
    let at = words.iter().position(|w| MONTHS.contains(w))?;
    let (month, day, clock, year) = (
        words.get(at)?,
        words.get(at + 1)?,
        words.get(at + 2)?,
        words.get(at + 3)?,
    );
    let m = MONTHS.iter().position(|x| x == month)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let mut hms = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (
        hms.next()??,
        hms.next()??,
        hms.next().flatten().unwrap_or(0),
    );
    // A From line is written by anyone who can deliver mail: only a real date is a date, so
    // none of the arithmetic below can overflow.
    let real = (1..=9999).contains(&y)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&s);
    if !real {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_dates_in_a_from_line_are_no_dates() {
        // Found by fuzzing: a day of 9e18 overflowed the day arithmetic.
        for line in [
            "MAILER-DAEMON Thu Jan 9223372036854775807 00:00:00 2024",
            "a Thu Jan  1 00:00:00 99999999999999999",
            "a Thu Jan  1 25:00:00 2024",
            "a Thu Jan  1 00:99999999999999:00 2024",
        ] {
            assert_eq!(parse_from_line(line), None, "{line}");
        }
        assert!(parse_from_line("a Thu Jan  1 00:00:00 2024").is_some());
    }

    #[test]
    fn round_trip_and_real_lines() {
        let t = UNIX_EPOCH + Duration::from_secs(1_704_067_200); // 2024-01-01 00:00:00 UTC
        assert_eq!(format(t), "Mon Jan  1 00:00:00 2024");
        assert_eq!(
            parse_from_line("From alice@example.com Mon Jan  1 00:00:00 2024"),
            Some(t)
        );
        assert_eq!(
            parse_from_line("From MAILER-DAEMON Thu Feb 29 12:34:56 2024"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_210_096))
        );
        assert_eq!(parse_from_line("From nobody"), None);
        assert_eq!(parse_from_line("From x Jan 99:99 garbage"), None);
    }
}
