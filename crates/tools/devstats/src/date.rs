//! Calendar dates, as gitdm compares them.
//!
//! gitdm keys employment changes on the calendar date of a changeset
//! (`datetime.date` built from the `Date:` line of `git log`, which is the
//! author date in the author's own time zone). [`Date`] is that: a
//! proleptic Gregorian (year, month, day), ordered, built either from a
//! signature's seconds and UTC offset or from `yyyy-mm-dd` text.
//!
//! Invariant: `1 <= month <= 12 && 1 <= day <= days_in_month(year, month)`.

use std::fmt;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// A date, if it exists in the calendar.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        let month8 = u8::try_from(month).ok()?;
        let day8 = u8::try_from(day).ok()?;
        if !(1..=12).contains(&month8) || day8 == 0 || day8 > days_in_month(year, month8) {
            return None;
        }
        Some(Date {
            year,
            month: month8,
            day: day8,
        })
    }

    /// The local calendar date of a git timestamp: `seconds` since the epoch
    /// (UTC) shown in a zone `offset_seconds` east of UTC.
    pub fn from_git_time(seconds: i64, offset_seconds: i32) -> Date {
        let local = seconds.saturating_add(i64::from(offset_seconds));
        civil_from_days(local.div_euclid(86_400))
    }

    /// Parses `yyyy-mm-dd` (gitdm's `ParseDate`: digits, dashes, a real date).
    pub fn parse(text: &str) -> Result<Date, &'static str> {
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("expected a date yyyy-mm-dd");
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(y) && digits(m) && digits(d)) {
            return Err("expected a date yyyy-mm-dd");
        }
        let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) else {
            return Err("expected a date yyyy-mm-dd");
        };
        Date::new(y, m, d).ok_or("no such day in the calendar")
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self) {
        assert!((1..=12).contains(&self.month));
        assert!(self.day >= 1 && self.day <= days_in_month(self.year, self.month));
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(feature = "git")]
/// Parses a `--since`/`--until` argument into seconds since the epoch:
/// `yyyy-mm-dd` (midnight UTC), ISO 8601 / RFC 2822 / git's own formats
/// with a time (as gix-date reads them), or `@SECONDS`. Relative dates
/// ("2 weeks ago") are refused: results must not depend on when they run.
pub fn parse_time(input: &str) -> Result<i64, crate::DevstatsError> {
    let err = |message: &str| crate::DevstatsError::Date {
        input: input.to_owned(),
        message: message.to_owned(),
    };
    let t = input.trim();
    if let Ok(d) = Date::parse(t) {
        return Ok(d.days_since_epoch() * 86_400);
    }
    gix::date::parse(t, None)
        .map(|time| time.seconds)
        .map_err(|_| err("expected yyyy-mm-dd, an ISO 8601 or RFC 2822 date and time, or @SECONDS"))
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Howard Hinnant's civil_from_days.
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date {
        year: i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
        month: month as u8,
        day: day as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_times_fall_on_the_author_local_day() {
        // 2009-09-09 23:30:00 UTC is already 2009-09-10 in UTC+02:00.
        let t = 1_252_539_000;
        assert_eq!(Date::from_git_time(t, 0).to_string(), "2009-09-09");
        assert_eq!(Date::from_git_time(t, 7200).to_string(), "2009-09-10");
        assert_eq!(Date::from_git_time(0, 0).to_string(), "1970-01-01");
        assert_eq!(Date::from_git_time(-1, 0).to_string(), "1969-12-31");
    }

    #[test]
    fn parse_accepts_real_dates_only() {
        assert_eq!(Date::parse("2008-02-29").unwrap().to_string(), "2008-02-29");
        assert_eq!(Date::parse("2009-2-3").unwrap().to_string(), "2009-02-03");
        assert_eq!(
            Date::parse("2009-02-29"),
            Err("no such day in the calendar")
        );
        assert_eq!(
            Date::parse("2009-13-01"),
            Err("no such day in the calendar")
        );
        assert_eq!(Date::parse("2009/01/01"), Err("expected a date yyyy-mm-dd"));
        assert_eq!(
            Date::parse("2009-01-01-01"),
            Err("expected a date yyyy-mm-dd")
        );
    }

    #[test]
    #[cfg(feature = "git")]
    fn time_arguments_parse_to_epoch_seconds() {
        assert_eq!(parse_time("2009-06-09").unwrap(), 1_244_505_600);
        assert_eq!(parse_time("@1244505600").unwrap(), 1_244_505_600);
        assert_eq!(
            parse_time("2009-06-09T02:00:00+02:00").unwrap(),
            1_244_505_600
        );
        assert!(parse_time("last tuesday").is_err());
        assert!(parse_time("2009-02-30").is_err());
    }

    #[test]
    fn days_round_trip() {
        for days in (-800_000i64..800_000).step_by(997) {
            let d = civil_from_days(days);
            d.assert_invariants();
            assert_eq!(d.days_since_epoch(), days);
        }
    }
}
