//! Dates for the `date` and `currentdate` tests (RFC 5260): a point in time with the zone it
//! is shown in, its parts (year .. weekday, iso8601, std11), header dates and zone offsets.

use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

/// A moment and the zone (minutes east of UTC) it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct When {
    /// Seconds since the Unix epoch.
    pub(crate) utc: i64,
    /// Minutes east of UTC.
    pub(crate) zone: i32,
}

/// `+hhmm` / `-hhmm` as minutes east of UTC.
pub(crate) fn parse_zone(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    let (sign, rest) = match b.split_first()? {
        (b'+', r) => (1, r),
        (b'-', r) => (-1, r),
        _ => return None,
    };
    if rest.len() != 4 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| i32::from(rest.get(i).map_or(0, |d| d - b'0'));
    let (h, m) = (n(0) * 10 + n(1), n(2) * 10 + n(3));
    (h <= 23 && m <= 59).then_some(sign * (h * 60 + m))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The date in a header value, with the zone written there; `None` if it does not parse.
pub(crate) fn from_header(raw: &[u8]) -> Option<When> {
    let mut value = raw.to_vec();
    value.extend_from_slice(b"\r\n");
    let HeaderValue::DateTime(dt) = MessageStream::new(&value).parse_date() else {
        return None;
    };
    let valid = (1..=12).contains(&dt.month)
        && (1..=31).contains(&dt.day)
        && dt.hour < 24
        && dt.minute < 60
        && dt.second < 61
        && dt.tz_hour < 24
        && dt.tz_minute < 60;
    if !valid {
        return None;
    }
    let zone = (i32::from(dt.tz_hour) * 60 + i32::from(dt.tz_minute))
        * if dt.tz_before_gmt { -1 } else { 1 };
    let days = days_from_civil(i64::from(dt.year), i64::from(dt.month), i64::from(dt.day));
    let local = days * 86_400
        + i64::from(dt.hour) * 3600
        + i64::from(dt.minute) * 60
        + i64::from(dt.second);
    Some(When {
        utc: local - i64::from(zone) * 60,
        zone,
    })
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The fields of a [`When`] in its own zone.
struct Fields {
    days: i64,
    y: i64,
    mo: i64,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
    sign: char,
    zh: i32,
    zm: i32,
}

fn fields(w: When) -> Fields {
    let local = w.utc.saturating_add(i64::from(w.zone) * 60);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    Fields {
        days,
        y,
        mo,
        d,
        h: secs / 3600,
        mi: secs / 60 % 60,
        s: secs % 60,
        sign: if w.zone < 0 { '-' } else { '+' },
        zh: w.zone.abs() / 60,
        zm: w.zone.abs() % 60,
    }
}

/// One date part (RFC 5260 §4.2) as text; `None` for an unknown part.
pub(crate) fn part(w: When, name: &str) -> Option<String> {
    let f = fields(w);
    Some(match name.to_ascii_lowercase().as_str() {
        "year" => format!("{:04}", f.y),
        "month" => format!("{:02}", f.mo),
        "day" => format!("{:02}", f.d),
        "date" => format!("{:04}-{:02}-{:02}", f.y, f.mo, f.d),
        "julian" => (f.days + 40_587).to_string(),
        "hour" => format!("{:02}", f.h),
        "minute" => format!("{:02}", f.mi),
        "second" => format!("{:02}", f.s),
        "time" => format!("{:02}:{:02}:{:02}", f.h, f.mi, f.s),
        "iso8601" => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            f.y, f.mo, f.d, f.h, f.mi, f.s, f.sign, f.zh, f.zm
        ),
        "std11" => std11(w),
        "zone" => format!("{}{:02}{:02}", f.sign, f.zh, f.zm),
        "weekday" => (f.days + 4).rem_euclid(7).to_string(),
        _ => return None,
    })
}

/// An RFC 5322 date: `Thu, 01 Jan 2009 12:00:00 +0100`.
pub(crate) fn std11(w: When) -> String {
    let f = fields(w);
    let weekday = usize::try_from((f.days + 4).rem_euclid(7)).unwrap_or(0);
    let month = usize::try_from(f.mo - 1).unwrap_or(0);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} {}{:02}{:02}",
        DAYS.get(weekday).unwrap_or(&"Sun"),
        f.d,
        MONTHS.get(month).unwrap_or(&"Jan"),
        f.y,
        f.h,
        f.mi,
        f.s,
        f.sign,
        f.zh,
        f.zm
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_date() {
        let w = from_header(b" Thu, 01 Jan 2009 12:30:05 +0100").unwrap();
        assert_eq!(w.utc, 1_230_809_405);
        assert_eq!(part(w, "date").unwrap(), "2009-01-01");
        assert_eq!(part(w, "time").unwrap(), "12:30:05");
        assert_eq!(part(w, "zone").unwrap(), "+0100");
        assert_eq!(part(w, "weekday").unwrap(), "4");
        assert_eq!(part(w, "julian").unwrap(), "54832");
        assert_eq!(part(w, "iso8601").unwrap(), "2009-01-01T12:30:05+01:00");
        assert_eq!(std11(w), "Thu, 01 Jan 2009 12:30:05 +0100");
        let utc = When {
            utc: w.utc,
            zone: -300,
        };
        assert_eq!(part(utc, "hour").unwrap(), "06");
        assert_eq!(parse_zone("-0500"), Some(-300));
        assert_eq!(parse_zone("0500"), None);
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }
}
