//! Where an event goes: (category, UTC hour of the event's own `logTime`) -> S3 key. Pure.
//!
//! The hour comes from the event, never from the clock, so a late or retried batch lands in the
//! same folders as a prompt one. Object names are derived from the batch's record ids, so a
//! retried invocation overwrites its own objects instead of duplicating events.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::classify::Category;

/// A UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcHour {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
}

impl UtcHour {
    /// The hour of a Unix time in milliseconds.
    pub fn from_epoch_millis(millis: i64) -> Self {
        let hours = millis.div_euclid(3_600_000);
        let (year, month, day) = civil_from_days(hours.div_euclid(24));
        Self {
            year,
            month,
            day,
            hour: hours.rem_euclid(24) as u8,
        }
    }

    /// The UTC hour of a DAS `logTime` ([`log_time_millis`]). `None` when it is not such a time.
    pub fn from_log_time(text: &str) -> Option<Self> {
        log_time_millis(text).map(Self::from_epoch_millis)
    }
}

/// The Unix time in milliseconds of a DAS `logTime`: `2021-06-04 02:22:47.218201+00`
/// (PostgreSQL, MySQL), seven fractional digits (SQL Server), `T` or space, seconds and
/// fraction optional, offsets `Z`, `+HH`, `+HHMM`, `+HH:MM`, none (taken as UTC). `None` when it
/// is not such a time.
pub fn log_time_millis(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b' ' | b'T' | b't'))
    {
        return None;
    }
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    if b.get(13) != Some(&b':') {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Seconds and a fraction (its first three digits are the milliseconds), if any; then the
    // offset, if any.
    let mut millis = 0;
    if b.get(16) == Some(&b':') {
        let seconds = num(17..19)?;
        if seconds > 60 {
            return None;
        }
        millis = seconds.min(59) * 1000;
        if b.get(19) == Some(&b'.') {
            let fraction = b[20..].iter().take_while(|d| d.is_ascii_digit());
            let mut scale = 100;
            for d in fraction.take(3) {
                millis += i64::from(d - b'0') * scale;
                scale /= 10;
            }
        }
    }
    let mut i = 16;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b':' || b[i] == b'.') {
        i += 1;
    }
    let offset_minutes = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &text.trim()[i + 1..];
            let digits: String = rest.chars().filter(|c| *c != ':').collect();
            if !digits.bytes().all(|d| d.is_ascii_digit()) {
                return None;
            }
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i64>().ok()?, 0),
                4 => (
                    digits[..2].parse::<i64>().ok()?,
                    digits[2..].parse::<i64>().ok()?,
                ),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if sign == b'+' { total } else { -total }
        }
        Some(_) => return None,
    };
    let days = days_from_civil(year, month, day);
    let local_minutes = (days * 24 + hour) * 60 + minute;
    Some((local_minutes - offset_minutes) * 60_000 + millis)
}

impl UtcHour {
    /// Unix time in milliseconds of the hour's first instant.
    pub fn start_millis(self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        (days * 24 + i64::from(self.hour)) * 3_600_000
    }

    /// The hour of a folder path as `Display` writes it (`2026/12/04/21`), e.g. the
    /// `!{timestamp:yyyy/MM/dd/HH}` part of a Firehose prefix. `None` when it is not one.
    pub fn from_folder(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 13 || b[4] != b'/' || b[7] != b'/' || b[10] != b'/' {
            return None;
        }
        Self::from_log_time(&format!(
            "{}-{}-{} {}:00",
            &text[0..4],
            &text[5..7],
            &text[8..10],
            &text[11..13]
        ))
    }
}

impl fmt::Display for UtcHour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}/{:02}/{:02}/{:02}",
            self.year, self.month, self.day, self.hour
        )
    }
}

/// One output object of a batch: all kept events of one category in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub category: Category,
    pub hour: UtcHour,
}

/// `<root><database>/`: the folder of one database's events, manifests and digests, the prefix
/// `das-setup up` gives the processor (`DAS_OUTPUT_PREFIX`) under its `--prefix` root. The key
/// names the database so that several databases' trails can share a bucket and a query prunes
/// by database before category and hour; DB identifiers start with a letter (RDS naming rules),
/// so a database's folder never collides with the `_manifests/` or `_digests/` folders.
pub fn database_prefix(root: &str, database: &str) -> String {
    format!("{root}{database}/")
}

/// `<prefix><CATEGORY>/`: the folder of one category's events (lifecycle rules name it).
pub fn category_prefix(prefix: &str, category: Category) -> String {
    format!("{prefix}{category}/")
}

/// `<prefix><CATEGORY>/<yyyy>/<MM>/<dd>/<HH>/<batch name>.json.gz`
pub fn object_key(prefix: &str, group: &GroupKey, batch_name: &str) -> String {
    format!(
        "{}{}/{batch_name}.json.gz",
        category_prefix(prefix, group.category),
        group.hour
    )
}

/// A name that is the same for every retry of the same batch: the earliest arrival time (so
/// names sort by time) and a digest of the record ids.
pub fn batch_name<'a>(
    record_ids: impl IntoIterator<Item = &'a str>,
    earliest_arrival_millis: Option<i64>,
) -> String {
    let mut digest = Sha256::new();
    for id in record_ids {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        digest.update((id.len() as u64).to_be_bytes());
        digest.update(id.as_bytes());
    }
    let hash = digest.finalize();
    let hex: String = hash[..10].iter().map(|b| format!("{b:02x}")).collect();
    match earliest_arrival_millis {
        Some(ms) => {
            let secs = ms.div_euclid(1000);
            let hour = UtcHour::from_epoch_millis(ms);
            let (mm, ss) = (secs.rem_euclid(3600) / 60, secs.rem_euclid(60));
            format!(
                "{:04}{:02}{:02}T{:02}{mm:02}{ss:02}Z-{hex}",
                hour.year, hour.month, hour.day, hour.hour
            )
        }
        None => hex,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(year: i32, month: u8, day: u8, hour: u8) -> UtcHour {
        UtcHour {
            year,
            month,
            day,
            hour,
        }
    }

    #[test]
    fn log_times_to_the_millisecond() {
        let hour = h(2021, 6, 4, 2).start_millis();
        let minute = 60_000;
        for (text, expected) in [
            ("2021-06-04 02:22:47.218201+00", hour + 22 * minute + 47_218),
            (
                "2021-06-04 02:22:47.2182014+00",
                hour + 22 * minute + 47_218,
            ),
            ("2021-06-04T02:22:47.5Z", hour + 22 * minute + 47_500),
            ("2021-06-04 02:22:47", hour + 22 * minute + 47_000),
            ("2021-06-04 02:22", hour + 22 * minute),
            ("2021-06-04 07:52:47+05:30", hour + 22 * minute + 47_000),
            ("2021-06-04 02:22:60", hour + 22 * minute + 59_000),
        ] {
            assert_eq!(log_time_millis(text), Some(expected), "{text}");
        }
        for bad in [
            "2021-06-04 02:22:4",
            "2021-06-04 02:22:61",
            "2021-06-04 02:22:xx",
        ] {
            assert_eq!(log_time_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn folders_and_hour_starts_are_the_inverse_of_display() {
        for hour in [h(2026, 12, 4, 21), h(2020, 2, 29, 0), h(1999, 12, 31, 23)] {
            assert_eq!(UtcHour::from_folder(&hour.to_string()), Some(hour));
            assert_eq!(UtcHour::from_epoch_millis(hour.start_millis()), hour);
            assert_eq!(
                UtcHour::from_epoch_millis(hour.start_millis() - 1).hour,
                (hour.hour + 23) % 24
            );
        }
        assert_eq!(h(1970, 1, 1, 1).start_millis(), 3_600_000);
        for bad in [
            "",
            "2026/12/04",
            "2026-12-04-21",
            "2026/13/04/21",
            "2026/12/04/24",
            "abcd/12/04/21",
        ] {
            assert_eq!(UtcHour::from_folder(bad), None, "{bad}");
        }
    }

    #[test]
    fn log_time_formats_of_every_engine() {
        let cases = [
            ("2021-06-04 02:22:47.218201+00", h(2021, 6, 4, 2)),
            ("2021-06-04 02:22:47.2182014+00", h(2021, 6, 4, 2)),
            ("2021-06-04T02:22:47Z", h(2021, 6, 4, 2)),
            ("2021-06-04 02:22:47", h(2021, 6, 4, 2)),
            ("2021-06-04 02:22", h(2021, 6, 4, 2)),
            // Offsets move the hour, and across days, months and years.
            ("2021-06-04 02:22:47.1-05", h(2021, 6, 4, 7)),
            ("2021-06-04 02:22:47+05:30", h(2021, 6, 3, 20)),
            ("2021-01-01 00:10:00+0100", h(2020, 12, 31, 23)),
            ("2020-02-29 23:59:59.999-01:00", h(2020, 3, 1, 0)),
        ];
        for (text, expected) in cases {
            assert_eq!(UtcHour::from_log_time(text), Some(expected), "{text}");
        }
        for bad in [
            "",
            "yesterday",
            "2021-13-01 00:00:00",
            "2021-06-04",
            "2021/06/04 02:22:47",
            "2021-06-04 24:00:00",
            "2021-06-04 02:22:47+5",
            "2021-06-04 02:22:47 UTC",
            "2021-06-04 02:22:47+00:0x",
            "２０２１-06-04 02:22",
        ] {
            assert_eq!(UtcHour::from_log_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_millis_round_trip_through_civil_dates() {
        assert_eq!(UtcHour::from_epoch_millis(0), h(1970, 1, 1, 0));
        assert_eq!(UtcHour::from_epoch_millis(-1), h(1969, 12, 31, 23));
        assert_eq!(
            UtcHour::from_epoch_millis(1_622_773_367_218),
            h(2021, 6, 4, 2)
        );
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(
                days_from_civil(i64::from(y), i64::from(m), i64::from(d)),
                days
            );
        }
    }

    #[test]
    fn keys_and_batch_names_are_deterministic() {
        let group = GroupKey {
            category: Category::AuthFailure,
            hour: h(2021, 6, 4, 2),
        };
        let name = batch_name(["a", "b"], Some(1_622_773_367_218));
        assert_eq!(name, batch_name(["a", "b"], Some(1_622_773_367_218)));
        assert_ne!(name, batch_name(["ab"], Some(1_622_773_367_218)));
        assert_ne!(name, batch_name(["b", "a"], Some(1_622_773_367_218)));
        assert!(name.starts_with("20210604T022247Z-"), "{name}");
        assert_eq!(name.len(), "20210604T022247Z-".len() + 20);
        assert_eq!(
            object_key("parsed/", &group, &name),
            format!("parsed/AUTH_FAILURE/2021/06/04/02/{name}.json.gz")
        );
        assert_eq!(batch_name([], None).len(), 20);
    }
}
