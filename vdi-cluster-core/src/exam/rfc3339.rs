//! RFC 3339 date-times at the API's edge: parsed with any UTC offset,
//! written in UTC (`2026-06-01T08:00:00Z`). Pure integer arithmetic.

use crate::time::Timestamp;
use crate::validation::ValidationError;

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses an RFC 3339 date-time (`2026-06-01T15:00:00+07:00`,
/// `2026-06-01T08:00:00.250Z`); errors name `field`. Years 1970 to 9999;
/// fractions beyond milliseconds are truncated.
pub fn parse_rfc3339(field: &str, text: &str) -> Result<Timestamp, ValidationError> {
    let bad = || {
        ValidationError::new(
            field,
            "must be an RFC 3339 date-time such as 2026-06-01T08:00:00Z or 2026-06-01T15:00:00+07:00",
        )
    };
    let b = text.as_bytes();
    if b.len() < 20 || b.len() > 40 || !text.is_ascii() {
        return Err(bad());
    }
    let num = |from: usize, len: usize| -> Result<i64, ValidationError> {
        let s = text.get(from..from + len).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let sep = |at: usize, chars: &[u8]| -> Result<(), ValidationError> {
        if chars.contains(&b[at]) {
            Ok(())
        } else {
            Err(bad())
        }
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b":")?;
    sep(16, b":")?;
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d < 1
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
    {
        return Err(bad());
    }
    let mut at = 19;
    let mut millis = 0;
    if b[at] == b'.' {
        let start = at + 1;
        at = start;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        if at == start {
            return Err(bad());
        }
        let digits = &text[start..at.min(start + 3)];
        millis = digits.parse::<i64>().map_err(|_| bad())? * 10_i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() => {
            sep(at + 3, b":")?;
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let off = oh * 60 + om;
            if *sign == b'-' { -off } else { off }
        }
        _ => return Err(bad()),
    };
    let s = s.min(59);
    let ms = days_from_civil(y, mo, d) * MS_PER_DAY
        + ((h * 60 + mi - offset_min) * 60 + s) * 1000
        + millis;
    u64::try_from(ms)
        .map(Timestamp::from_millis)
        .map_err(|_| ValidationError::new(field, "must not be before 1970-01-01T00:00:00Z"))
}

/// Writes `t` in UTC: `2026-06-01T08:00:00Z`, with `.mmm` when not a whole
/// second.
pub fn format_rfc3339(t: Timestamp) -> String {
    let ms = i64::try_from(t.as_millis()).unwrap_or(i64::MAX);
    let (days, rem) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (y, m, d) = civil_from_days(days);
    let (secs, millis) = (rem / 1000, rem % 1000);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if millis == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_fractions() {
        let utc = parse_rfc3339("startsAt", "2026-06-01T08:00:00Z").unwrap();
        assert_eq!(utc.as_millis(), 1_780_300_800_000);
        assert_eq!(
            parse_rfc3339("startsAt", "2026-06-01T15:00:00+07:00").unwrap(),
            utc
        );
        assert_eq!(
            parse_rfc3339("startsAt", "2026-06-01T07:30:00-00:30").unwrap(),
            utc
        );
        assert_eq!(
            parse_rfc3339("startsAt", "2026-06-01T08:00:00.25Z")
                .unwrap()
                .as_millis(),
            utc.as_millis() + 250
        );
        assert_eq!(format_rfc3339(utc), "2026-06-01T08:00:00Z");
        assert_eq!(
            format_rfc3339(Timestamp::from_millis(utc.as_millis() + 7)),
            "2026-06-01T08:00:00.007Z"
        );
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for bad in [
            "",
            "2026-06-01",
            "2026-06-01T08:00:00",
            "2026-02-30T08:00:00Z",
            "2026-13-01T08:00:00Z",
            "2026-06-01T24:00:00Z",
            "2026-06-01T08:00:00+7:00",
            "2026-06-01T08:00:00.Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+01:00",
            "２026-06-01T08:00:00Z",
        ] {
            let err = parse_rfc3339("endsAt", bad).unwrap_err();
            assert_eq!(err.field, "endsAt", "{bad}");
        }
    }

    #[test]
    fn round_trips_every_day_of_a_few_centuries() {
        for days in (0..(8000 * 366)).step_by(97) {
            let t = Timestamp::from_millis(days * MS_PER_DAY as u64 + 3_723_000);
            assert_eq!(parse_rfc3339("t", &format_rfc3339(t)).unwrap(), t);
        }
    }
}
