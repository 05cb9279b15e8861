//! ISO 8601 durations at the API's edge (`PT2H`, `PT90M`, `P1DT4H`):
//! days, hours, minutes and whole seconds. Years, months and weeks are
//! refused (their length depends on the calendar), as are fractions.

use std::time::Duration;

use crate::validation::ValidationError;

/// Parses an ISO 8601 duration of days, hours, minutes and seconds;
/// errors name `field`.
pub fn parse_iso_duration(field: &str, text: &str) -> Result<Duration, ValidationError> {
    let bad = || {
        ValidationError::new(
            field,
            format!(
                "{text:?} is not an ISO 8601 duration of days, hours, minutes and seconds (PT2H, P1DT30M)"
            ),
        )
    };
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut seconds: u64 = 0;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, u64)]| -> Result<(), ValidationError> {
        let mut number = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let (_, scale) = allowed.find(|(u, _)| *u == c).ok_or_else(bad)?;
            let n: u64 = number.parse().map_err(|_| bad())?;
            seconds = n
                .checked_mul(*scale)
                .and_then(|s| seconds.checked_add(s))
                .ok_or_else(bad)?;
            number.clear();
            any = true;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    add(date, &[('D', 86_400)])?;
    if let Some(time) = time {
        add(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if !any {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_hours_minutes_seconds() {
        let p = |t: &str| parse_iso_duration("duration", t).map(|d| d.as_secs());
        assert_eq!(p("PT2H"), Ok(7200));
        assert_eq!(p("PT90M"), Ok(5400));
        assert_eq!(p("P1DT4H30M15S"), Ok(86_400 + 4 * 3600 + 30 * 60 + 15));
        assert_eq!(p("P2D"), Ok(2 * 86_400));
        assert_eq!(p("PT0S"), Ok(0));
        for bad in [
            "", "P", "PT", "2H", "PT2", "P1M", "P1W", "PT1.5H", "PT2M1H", "PTH", "pt2h",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.field, "duration", "{bad}");
        }
    }
}
