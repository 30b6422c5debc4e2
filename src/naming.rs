//! File-name grammar: the only place where names become typed values and back.
//!
//! Sensor files are `DD.MM.YYYY HHMM_{Apartment}_received.json`, weather files are
//! `Pred_YYYY-MM-DD.csv`. Parsing is strict (exact digits, exact case, no suffixes) because only
//! a name that parses is ever turned into a Bronze path: a strict grammar is what keeps `..`,
//! separators and temp files out of Bronze.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::fmt;

const SENSOR_SUFFIX: &str = "_received.json";
const WEATHER_PREFIX: &str = "Pred_";
const WEATHER_SUFFIX: &str = ".csv";
/// Longest apartment name we accept; real ones are ~15 characters.
const MAX_APARTMENT_LEN: usize = 64;

/// Why a name is not a sensor or weather file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is not valid UTF-8")]
    NotUtf8,
    #[error("name contains a path separator or is a relative path component")]
    PathLike,
    #[error("name does not match the expected pattern")]
    Pattern,
    #[error("name carries an invalid calendar date")]
    InvalidDate,
    #[error("name carries an invalid time of day")]
    InvalidTime,
    #[error("apartment part is empty, too long or not ASCII alphanumeric")]
    Apartment,
}

impl NameError {
    /// Stable short code, used in events and `status` counts.
    pub fn code(&self) -> &'static str {
        match self {
            NameError::NotUtf8 => "not-utf8",
            NameError::PathLike => "path-like",
            NameError::Pattern => "pattern",
            NameError::InvalidDate => "invalid-date",
            NameError::InvalidTime => "invalid-time",
            NameError::Apartment => "apartment",
        }
    }
}

/// A parsed sensor file name: one apartment, one naive local minute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SensorName {
    /// Naive local time of the reading, seconds always zero. Never converted to UTC.
    pub minute: NaiveDateTime,
    pub apartment: String,
}

/// A parsed weather forecast file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeatherName {
    pub date: NaiveDate,
}

impl SensorName {
    pub fn new(minute: NaiveDateTime, apartment: &str) -> Self {
        SensorName {
            minute: truncate_to_minute(minute),
            apartment: apartment.to_owned(),
        }
    }

    /// Parses raw directory-entry bytes; non-UTF-8 is a typed error, never a panic.
    pub fn parse_bytes(name: &[u8]) -> Result<Self, NameError> {
        Self::parse(std::str::from_utf8(name).map_err(|_| NameError::NotUtf8)?)
    }

    pub fn parse(name: &str) -> Result<Self, NameError> {
        reject_path_like(name)?;
        let body = name.strip_suffix(SENSOR_SUFFIX).ok_or(NameError::Pattern)?;
        // "DD.MM.YYYY HHMM_" is 16 ASCII bytes; the apartment follows.
        if body.len() < 16 || !body.is_char_boundary(16) {
            return Err(NameError::Pattern);
        }
        let (stamp, apartment) = body.split_at(16);
        let b = stamp.as_bytes();
        let shape_ok = b[2] == b'.' && b[5] == b'.' && b[10] == b' ' && b[15] == b'_';
        if !shape_ok {
            return Err(NameError::Pattern);
        }
        let day = digits(&b[0..2])?;
        let month = digits(&b[3..5])?;
        let year = digits(&b[6..10])?;
        let hour = digits(&b[11..13])?;
        let min = digits(&b[13..15])?;
        check_apartment(apartment)?;
        let date =
            NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(NameError::InvalidDate)?;
        let time = NaiveTime::from_hms_opt(hour, min, 0).ok_or(NameError::InvalidTime)?;
        Ok(SensorName {
            minute: date.and_time(time),
            apartment: apartment.to_owned(),
        })
    }
}

impl fmt::Display for SensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minute;
        write!(
            f,
            "{:02}.{:02}.{:04} {:02}{:02}_{}{}",
            m.day(),
            m.month(),
            m.year(),
            m.hour(),
            m.minute(),
            self.apartment,
            SENSOR_SUFFIX
        )
    }
}

impl WeatherName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        reject_path_like(name)?;
        let body = name
            .strip_prefix(WEATHER_PREFIX)
            .and_then(|s| s.strip_suffix(WEATHER_SUFFIX))
            .ok_or(NameError::Pattern)?;
        let b = body.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(NameError::Pattern);
        }
        let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        let date =
            NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(NameError::InvalidDate)?;
        Ok(WeatherName { date })
    }
}

impl fmt::Display for WeatherName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            WEATHER_PREFIX,
            self.date.format("%Y-%m-%d"),
            WEATHER_SUFFIX
        )
    }
}

/// The next naive minute. Naive arithmetic on purpose: names carry local wall-clock time, so
/// the successor of 23:59 on 28.02.2024 is 00:00 on 29.02.2024, with no DST adjustment.
pub fn next_minute(minute: NaiveDateTime) -> NaiveDateTime {
    minute + Duration::minutes(1)
}

/// A naive minute as a dense integer (minutes since 1970-01-01 00:00 naive), for compact keys.
pub fn minute_index(minute: NaiveDateTime) -> i64 {
    minute.and_utc().timestamp().div_euclid(60)
}

/// Inverse of [`minute_index`]; `None` outside chrono's range.
pub fn minute_from_index(index: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp(index.checked_mul(60)?, 0).map(|t| t.naive_utc())
}

pub fn truncate_to_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// Refuses what could be a path, a relative component or a hidden file (also for feed patterns).
pub(crate) fn reject_path_like(name: &str) -> Result<(), NameError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('.');
    if bad {
        Err(NameError::PathLike)
    } else {
        Ok(())
    }
}

fn digits(b: &[u8]) -> Result<u32, NameError> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(NameError::Pattern);
    }
    Ok(b.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// A stream (apartment) value: 1 to 64 ASCII letters and digits (also for feed patterns).
pub(crate) fn check_apartment(apartment: &str) -> Result<(), NameError> {
    let ok = !apartment.is_empty()
        && apartment.len() <= MAX_APARTMENT_LEN
        && apartment.bytes().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(NameError::Apartment)
    }
}

/// `NAME.kept-<16 hex>`, as written when a previous version is kept aside.
pub fn is_kept_aside(name: &str) -> bool {
    name.rsplit_once(".kept-")
        .is_some_and(|(_, hex)| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn parses_the_seed_example() {
        let n = SensorName::parse("18.08.2023 1000_JimmyLoup_received.json").unwrap();
        assert_eq!(n.minute, at(2023, 8, 18, 10, 0));
        assert_eq!(n.apartment, "JimmyLoup");
        assert_eq!(n.to_string(), "18.08.2023 1000_JimmyLoup_received.json");
    }

    #[test]
    fn rejects_each_malformed_sensor_name_with_its_reason() {
        let cases = [
            (
                "31.02.2023 1000_JimmyLoup_received.json",
                NameError::InvalidDate,
            ),
            (
                "18.08.2023 2460_JimmyLoup_received.json",
                NameError::InvalidTime,
            ),
            (
                "18.08.2023 1060_JimmyLoup_received.json",
                NameError::InvalidTime,
            ),
            (
                "18.08.2023 1000_JimmyLoup_Received.json",
                NameError::Pattern,
            ),
            (
                "18.08.2023 1000_JimmyLoup_received.JSON",
                NameError::Pattern,
            ),
            (
                "18.08.2023 1000_JimmyLoup_received.json.tmp",
                NameError::Pattern,
            ),
            (
                "18.08.2023 1000_JimmyLoup_received.json~",
                NameError::Pattern,
            ),
            (
                "../18.08.2023 1000_JimmyLoup_received.json",
                NameError::PathLike,
            ),
            (
                "a/18.08.2023 1000_JimmyLoup_received.json",
                NameError::PathLike,
            ),
            (
                "a\\18.08.2023 1000_JimmyLoup_received.json",
                NameError::PathLike,
            ),
            ("..", NameError::PathLike),
            ("18.08.2023 1000__received.json", NameError::Apartment),
            (
                "18.08.2023 1000_Jimmy.Loup_received.json",
                NameError::Apartment,
            ),
            (
                "18-08-2023 1000_JimmyLoup_received.json",
                NameError::Pattern,
            ),
            ("8.08.2023 1000_JimmyLoup_received.json", NameError::Pattern),
            (
                "+8.08.2023 1000_JimmyLoup_received.json",
                NameError::Pattern,
            ),
            ("18.08.2023 1000_Jimmyé_received.json", NameError::Apartment),
            ("", NameError::PathLike),
        ];
        for (name, want) in cases {
            assert_eq!(SensorName::parse(name), Err(want), "{name}");
        }
        assert_eq!(
            SensorName::parse_bytes(b"\xff\xfe_received.json"),
            Err(NameError::NotUtf8)
        );
    }

    #[test]
    fn weather_names_parse_strictly() {
        let w = WeatherName::parse("Pred_2023-08-18.csv").unwrap();
        assert_eq!(w.date, NaiveDate::from_ymd_opt(2023, 8, 18).unwrap());
        assert_eq!(w.to_string(), "Pred_2023-08-18.csv");
        assert_eq!(
            WeatherName::parse("Pred_2023-02-30.csv"),
            Err(NameError::InvalidDate)
        );
        assert_eq!(
            WeatherName::parse("pred_2023-08-18.csv"),
            Err(NameError::Pattern)
        );
        assert_eq!(
            WeatherName::parse("Pred_2023-08-18.csv.part"),
            Err(NameError::Pattern)
        );
        assert_eq!(
            WeatherName::parse("Pred_2023-8-18.csv"),
            Err(NameError::Pattern)
        );
    }

    #[test]
    fn successor_crosses_day_month_year_and_leap_day() {
        assert_eq!(next_minute(at(2023, 8, 18, 10, 59)), at(2023, 8, 18, 11, 0));
        assert_eq!(next_minute(at(2023, 8, 31, 23, 59)), at(2023, 9, 1, 0, 0));
        assert_eq!(next_minute(at(2023, 12, 31, 23, 59)), at(2024, 1, 1, 0, 0));
        assert_eq!(next_minute(at(2024, 2, 28, 23, 59)), at(2024, 2, 29, 0, 0));
        assert_eq!(next_minute(at(2023, 2, 28, 23, 59)), at(2023, 3, 1, 0, 0));
        // Naive: the spring DST jump (Europe/Zurich 26.03.2023 02:00) is not skipped here.
        assert_eq!(next_minute(at(2023, 3, 26, 1, 59)), at(2023, 3, 26, 2, 0));
    }

    fn any_minute() -> impl Strategy<Value = NaiveDateTime> {
        // 1990..2100 covers every plausible sensor date, leap days included.
        (631_152_000i64 / 60..4_102_444_800i64 / 60)
            .prop_map(|i| minute_from_index(i).expect("in range"))
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(m in any_minute(), apt in "[A-Za-z0-9]{1,20}") {
            let name = SensorName::new(m, &apt);
            prop_assert_eq!(SensorName::parse(&name.to_string()), Ok(name));
        }

        #[test]
        fn successor_is_one_naive_minute_and_formats_consistently(m in any_minute()) {
            let next = next_minute(m);
            prop_assert_eq!(minute_index(next), minute_index(m) + 1);
            prop_assert_eq!(next.second(), 0);
            let parsed = SensorName::parse(&SensorName::new(next, "A").to_string()).unwrap();
            prop_assert_eq!(parsed.minute, next);
        }

        #[test]
        fn weather_round_trip(days in 0i64..40_000) {
            let date = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Duration::days(days);
            let w = WeatherName { date };
            prop_assert_eq!(WeatherName::parse(&w.to_string()), Ok(w));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = SensorName::parse_bytes(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) { let _ = WeatherName::parse(s); }
        }
    }
}
