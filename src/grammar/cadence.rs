//! How often a feed writes a file: a whole number of minutes that divides a day, so every day
//! has the same slots, counted from local midnight. Times here are naive local wall-clock
//! times, like the names that carry them; time zones and DST are handled by the callers.
//! Also the time fields a name can carry ([`TimeField`]), and which of them a cadence needs.

use chrono::{Duration, NaiveDateTime, NaiveTime, Timelike};
use std::fmt;
use std::str::FromStr;

const MINUTES_PER_DAY: u32 = 24 * 60;

/// A feed's cadence. Invariant: `1 <= minutes <= 1440` and `1440 % minutes == 0`, so slot
/// boundaries fall at the same times of day every day and one slot always starts at midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cadence {
    minutes: u32,
}

/// A time field of a file name, coarsest first (the derived order is the coarseness order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeField {
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

impl TimeField {
    /// Every field, coarsest first.
    pub const ALL: [TimeField; 5] = [
        TimeField::Year,
        TimeField::Month,
        TimeField::Day,
        TimeField::Hour,
        TimeField::Minute,
    ];

    /// The placeholder that stands for this field in a feed's name pattern.
    pub fn placeholder(self) -> &'static str {
        match self {
            TimeField::Year => "{YYYY}",
            TimeField::Month => "{MM}",
            TimeField::Day => "{DD}",
            TimeField::Hour => "{HH}",
            TimeField::Minute => "{mi}",
        }
    }

    /// How many digits the field always has in a name (zero-padded).
    pub fn width(self) -> usize {
        match self {
            TimeField::Year => 4,
            _ => 2,
        }
    }
}

impl fmt::Display for TimeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.placeholder())
    }
}

impl Cadence {
    /// One file a minute (the sensors).
    pub const MINUTE: Cadence = Cadence { minutes: 1 };
    /// One file a day (the forecasts).
    pub const DAY: Cadence = Cadence {
        minutes: MINUTES_PER_DAY,
    };

    /// The cadence of `minutes`, if it divides a day evenly.
    pub fn from_minutes(minutes: u32) -> Option<Cadence> {
        let ok =
            (1..=MINUTES_PER_DAY).contains(&minutes) && MINUTES_PER_DAY.is_multiple_of(minutes);
        ok.then_some(Cadence { minutes })
    }

    /// Parses `Nm`, `Nh` or `1d` (e.g. `1m`, `5m`, `15m`, `1h`, `6h`, `1d`). Strict: lower-case
    /// unit, no spaces, no sign, no leading zero. `60m` and `24h` are accepted and display as
    /// `1h` and `1d`. The error says what is accepted, for a config message.
    pub fn parse(text: &str) -> Result<Cadence, String> {
        const ACCEPTED: &str = "a whole number of minutes (`m`) or hours (`h`), or `1d`, \
                                that divides a day, e.g. 1m, 5m, 15m, 1h, 6h or 1d";
        let general = || format!("`{text}` is not a cadence: write {ACCEPTED}");
        let mut chars = text.chars();
        let unit = chars.next_back().ok_or_else(general)?;
        let number = chars.as_str();
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(general());
        }
        if number.len() > 1 && number.starts_with('0') {
            return Err(format!(
                "`{text}` is not a cadence: write the number without leading zeros"
            ));
        }
        let per_unit = match unit {
            'm' => 1,
            'h' => 60,
            'd' => MINUTES_PER_DAY,
            _ => return Err(general()),
        };
        let minutes = number
            .parse::<u32>()
            .ok()
            .and_then(|n| n.checked_mul(per_unit));
        match minutes {
            Some(0) => Err(format!(
                "`{text}` is not a cadence: the shortest is 1m; write {ACCEPTED}"
            )),
            Some(m) if m <= MINUTES_PER_DAY => Cadence::from_minutes(m).ok_or_else(|| {
                format!(
                    "`{text}` does not divide a day evenly, so days would not share their \
                     slots: write {ACCEPTED} (also 2m, 10m, 20m, 30m, 2h, 3h, 4h, 8h, 12h)"
                )
            }),
            _ => Err(format!(
                "`{text}` is longer than a day: the longest cadence is 1d"
            )),
        }
    }

    /// The slot length in minutes.
    pub fn minutes(self) -> u32 {
        self.minutes
    }

    /// Whether there is one slot a day (at midnight).
    pub fn is_daily(self) -> bool {
        self.minutes == MINUTES_PER_DAY
    }

    /// The finest time field a name of this cadence must carry: `{DD}` for a daily feed, `{HH}`
    /// when slots start on whole hours, `{mi}` otherwise (below an hour, or e.g. 90m, whose
    /// slots start at 01:30). Finer fields could not be predicted; coarser ones are all needed.
    pub fn finest_field(self) -> TimeField {
        if self.is_daily() {
            TimeField::Day
        } else if self.minutes.is_multiple_of(60) {
            TimeField::Hour
        } else {
            TimeField::Minute
        }
    }

    /// The start of the slot `t` falls in: `t` floored to the slot grid measured from its own
    /// local midnight, seconds and below zeroed.
    pub fn slot_of(self, t: NaiveDateTime) -> NaiveDateTime {
        let of_day = t.hour() * 60 + t.minute();
        let start = of_day - of_day % self.minutes;
        let time = NaiveTime::from_hms_opt(start / 60, start % 60, 0)
            .expect("a minute of the day is a valid time");
        t.date().and_time(time)
    }

    /// The start of the slot after the one `slot` falls in. Naive arithmetic, like
    /// [`crate::naming::next_minute`]: the slot after 23:00 in an hourly feed is 00:00 the next
    /// day, whatever a DST change does to the wall clock. Panics only past chrono's year range.
    pub fn next(self, slot: NaiveDateTime) -> NaiveDateTime {
        self.slot_of(slot) + Duration::minutes(i64::from(self.minutes))
    }

    /// Whether `t` is exactly the start of a slot.
    pub fn is_slot(self, t: NaiveDateTime) -> bool {
        self.slot_of(t) == t
    }
}

impl fmt::Display for Cadence {
    /// The canonical form: `1d`, whole hours as `Nh`, the rest as `Nm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_daily() {
            f.write_str("1d")
        } else if self.minutes.is_multiple_of(60) {
            write!(f, "{}h", self.minutes / 60)
        } else {
            write!(f, "{}m", self.minutes)
        }
    }
}

impl FromStr for Cadence {
    type Err = String;

    fn from_str(text: &str) -> Result<Cadence, String> {
        Cadence::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    /// Every accepted spelling gives its minutes and canonical form; every refusal says why.
    #[test]
    fn parse_accepts_divisors_of_a_day_and_refuses_the_rest_with_a_reason() {
        let accepted = [
            ("1m", 1, "1m"),
            ("5m", 5, "5m"),
            ("15m", 15, "15m"),
            ("30m", 30, "30m"),
            ("90m", 90, "90m"),
            ("60m", 60, "1h"),
            ("1h", 60, "1h"),
            ("2h", 120, "2h"),
            ("6h", 360, "6h"),
            ("12h", 720, "12h"),
            ("24h", 1440, "1d"),
            ("1440m", 1440, "1d"),
            ("1d", 1440, "1d"),
        ];
        for (text, minutes, canonical) in accepted {
            let c = Cadence::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(c.minutes(), minutes, "{text}");
            assert_eq!(c.to_string(), canonical, "{text}");
            assert_eq!(Cadence::parse(canonical), Ok(c), "{canonical} round-trips");
        }
        let refused = [
            ("0m", "shortest is 1m"),
            ("0h", "shortest is 1m"),
            ("7m", "does not divide a day"),
            ("7h", "does not divide a day"),
            ("2d", "longer than a day"),
            ("25h", "longer than a day"),
            ("99999999999m", "longer than a day"),
            ("05m", "leading zeros"),
            ("", "is not a cadence"),
            ("5", "is not a cadence"),
            ("m", "is not a cadence"),
            ("5s", "is not a cadence"),
            ("5M", "is not a cadence"),
            (" 5m", "is not a cadence"),
            ("5m ", "is not a cadence"),
            ("+5m", "is not a cadence"),
            ("1.5h", "is not a cadence"),
            ("5é", "is not a cadence"),
        ];
        for (text, why) in refused {
            let err = Cadence::parse(text).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(
                err.contains("1d") || err.contains("leading"),
                "{text:?}: {err}"
            );
        }
    }

    /// A daily feed needs the day, a whole-hour one the hour, anything else the minute.
    #[test]
    fn finest_field_follows_the_slot_starts() {
        let c = |t| Cadence::parse(t).unwrap();
        assert_eq!(c("1d").finest_field(), TimeField::Day);
        assert_eq!(c("12h").finest_field(), TimeField::Hour);
        assert_eq!(c("1h").finest_field(), TimeField::Hour);
        assert_eq!(c("90m").finest_field(), TimeField::Minute);
        assert_eq!(c("5m").finest_field(), TimeField::Minute);
        assert!(c("1d").is_daily() && !c("12h").is_daily());
    }

    /// Slots are floored from local midnight, and the next slot crosses midnight, a month end,
    /// a year end and a leap day as plain calendar arithmetic.
    #[test]
    fn slot_of_and_next_cross_midnight_and_month_ends() {
        let c = |t| Cadence::parse(t).unwrap();
        let m15 = c("15m");
        assert_eq!(
            m15.slot_of(at(2024, 1, 31, 23, 59, 30)),
            at(2024, 1, 31, 23, 45, 0)
        );
        assert_eq!(
            m15.next(at(2024, 1, 31, 23, 45, 0)),
            at(2024, 2, 1, 0, 0, 0)
        );
        assert_eq!(
            m15.next(at(2024, 1, 31, 23, 50, 7)),
            at(2024, 2, 1, 0, 0, 0)
        );
        let h6 = c("6h");
        assert_eq!(
            h6.slot_of(at(2023, 12, 31, 23, 59, 59)),
            at(2023, 12, 31, 18, 0, 0)
        );
        assert_eq!(h6.next(at(2023, 12, 31, 18, 0, 0)), at(2024, 1, 1, 0, 0, 0));
        let m90 = c("90m");
        assert_eq!(
            m90.slot_of(at(2023, 4, 30, 1, 29, 0)),
            at(2023, 4, 30, 0, 0, 0)
        );
        assert_eq!(
            m90.slot_of(at(2023, 4, 30, 1, 30, 0)),
            at(2023, 4, 30, 1, 30, 0)
        );
        assert_eq!(
            m90.next(at(2023, 4, 30, 22, 30, 0)),
            at(2023, 5, 1, 0, 0, 0)
        );
        let d = Cadence::DAY;
        assert_eq!(
            d.slot_of(at(2024, 2, 28, 13, 7, 0)),
            at(2024, 2, 28, 0, 0, 0)
        );
        assert_eq!(d.next(at(2024, 2, 28, 0, 0, 0)), at(2024, 2, 29, 0, 0, 0));
        assert_eq!(d.next(at(2023, 2, 28, 0, 0, 0)), at(2023, 3, 1, 0, 0, 0));
        assert_eq!(
            Cadence::MINUTE.next(at(2023, 8, 31, 23, 59, 0)),
            at(2023, 9, 1, 0, 0, 0)
        );
        assert!(m15.is_slot(at(2024, 1, 31, 23, 45, 0)));
        assert!(!m15.is_slot(at(2024, 1, 31, 23, 46, 0)));
        assert!(!m15.is_slot(at(2024, 1, 31, 23, 45, 1)));
        assert!(!d.is_slot(at(2024, 1, 31, 0, 1, 0)));
    }

    fn any_cadence() -> impl Strategy<Value = Cadence> {
        let all: Vec<Cadence> = (1..=MINUTES_PER_DAY)
            .filter_map(Cadence::from_minutes)
            .collect();
        proptest::sample::select(all)
    }

    proptest! {
        /// Any time lies in its slot: the slot starts at or before it, on the grid, on the same
        /// date, and the next slot starts exactly one cadence later, after it.
        #[test]
        fn a_time_lies_in_its_slot(c in any_cadence(), secs in 0i64..4_102_444_800) {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap().naive_utc();
            let slot = c.slot_of(t);
            prop_assert!(slot <= t && t < c.next(slot));
            prop_assert!(c.is_slot(slot));
            prop_assert_eq!(slot.date(), t.date());
            prop_assert_eq!((c.next(slot) - slot).num_minutes(), i64::from(c.minutes()));
            prop_assert_eq!(Cadence::parse(&c.to_string()), Ok(c));
        }
    }
}
