//! `strftime_now(format)` for templates (Llama 3.2 prints today's date with it).
//!
//! transformers calls `datetime.now().strftime(format)` in the server's local time zone. A gateway
//! host's zone is an accident of deployment, so we use UTC: the same prompt on every replica.
//! Callers who need a fixed date pass a `date_string` variable — the templates that print a date
//! only call `strftime_now` when `date_string` is undefined.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A UTC calendar instant, enough for the directives templates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i64,
    pub month: u32, // 1..=12
    pub day: u32,   // 1..=31
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub weekday: u32,     // 0 = Monday, as Python's `%w` is not (see `format`)
    pub day_of_year: u32, // 1..=366
}

impl UtcDateTime {
    pub fn now() -> Self {
        let seconds = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => elapsed.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        };
        Self::from_unix(seconds)
    }

    pub fn from_unix(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let in_day = seconds.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let day_of_year = (days - days_from_civil(year, 1, 1)) as u32 + 1;
        UtcDateTime {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            // 1970-01-01 was a Thursday (3 when Monday is 0).
            weekday: (days + 3).rem_euclid(7) as u32,
            day_of_year,
        }
    }

    /// Formats like Python's `strftime` for the common directives; an unknown directive is
    /// copied as is (what glibc, and so CPython on Linux, does).
    pub fn format(&self, pattern: &str) -> String {
        let mut out = String::with_capacity(pattern.len() + 16);
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(directive) = chars.next() else {
                out.push('%');
                break;
            };
            let month_name = MONTHS[(self.month - 1) as usize];
            let weekday_name = WEEKDAYS[self.weekday as usize];
            match directive {
                'Y' => out.push_str(&self.year.to_string()),
                'y' => out.push_str(&format!("{:02}", self.year.rem_euclid(100))),
                'm' => out.push_str(&format!("{:02}", self.month)),
                'd' => out.push_str(&format!("{:02}", self.day)),
                'e' => out.push_str(&format!("{:>2}", self.day)),
                'j' => out.push_str(&format!("{:03}", self.day_of_year)),
                'H' => out.push_str(&format!("{:02}", self.hour)),
                'I' => out.push_str(&format!("{:02}", (self.hour + 11) % 12 + 1)),
                'M' => out.push_str(&format!("{:02}", self.minute)),
                'S' => out.push_str(&format!("{:02}", self.second)),
                'p' => out.push_str(if self.hour < 12 { "AM" } else { "PM" }),
                'B' => out.push_str(month_name),
                'b' | 'h' => out.push_str(&month_name[..3]),
                'A' => out.push_str(weekday_name),
                'a' => out.push_str(&weekday_name[..3]),
                'u' => out.push_str(&(self.weekday + 1).to_string()),
                'w' => out.push_str(&((self.weekday + 1) % 7).to_string()),
                'F' => out.push_str(&format!("{}-{:02}-{:02}", self.year, self.month, self.day)),
                'T' => out.push_str(&format!(
                    "{:02}:{:02}:{:02}",
                    self.hour, self.minute, self.second
                )),
                'Z' => out.push_str("UTC"),
                'z' => out.push_str("+0000"),
                '%' => out.push('%'),
                other => {
                    out.push('%');
                    out.push(other);
                }
            }
        }
        out
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_a_thursday_in_january() {
        let t = UtcDateTime::from_unix(0);
        assert_eq!(
            (t.year, t.month, t.day, t.weekday, t.day_of_year),
            (1970, 1, 1, 3, 1)
        );
        assert_eq!(
            t.format("%a %A %d %b %Y %H:%M:%S"),
            "Thu Thursday 01 Jan 1970 00:00:00"
        );
    }

    #[test]
    fn llama_date_format() {
        // 2024-07-26 13:05:09 UTC, the date Llama 3.1's template hard-codes.
        let t = UtcDateTime::from_unix(1_721_999_109);
        assert_eq!(t.format("%d %b %Y"), "26 Jul 2024");
        assert_eq!(
            t.format("%B %e, %y; %j; %I%p; %F %T %Z%z"),
            "July 26, 24; 208; 01PM; 2024-07-26 13:05:09 UTC+0000"
        );
        assert_eq!(t.format("%u %w %A"), "5 5 Friday");
    }

    #[test]
    fn leap_day_and_pre_epoch() {
        let leap = UtcDateTime::from_unix(951_782_400); // 2000-02-29 00:00:00
        assert_eq!(leap.format("%Y-%m-%d %j"), "2000-02-29 060");
        let before = UtcDateTime::from_unix(-1); // 1969-12-31 23:59:59, a Wednesday
        assert_eq!(before.format("%F %T %a"), "1969-12-31 23:59:59 Wed");
    }

    #[test]
    fn unknown_directives_and_trailing_percent_are_copied() {
        let t = UtcDateTime::from_unix(0);
        assert_eq!(t.format("%Q 100%% %"), "%Q 100% %");
        assert_eq!(t.format("no directives"), "no directives");
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000_i64, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
