//! Where "now" comes from. The core never reads the system clock directly, so tests can drive
//! days of schedule with a manual clock or tokio's paused time (`testing`), in any
//! time zone ([`Zone`]), and prediction can be checked at any wall-clock time.

use chrono::{DateTime, Local, LocalResult, NaiveDateTime, TimeZone, Utc};

/// The time zone sensor names are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The machine's zone (`TZ`, `/etc/localtime`).
    System,
    /// A named zone, e.g. `Europe/Zurich` (tests of DST).
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Naive local wall-clock time of an instant.
    pub fn local(self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::System => t.with_timezone(&Local).naive_local(),
            Zone::Named(tz) => t.with_timezone(&tz).naive_local(),
        }
    }

    /// The first instant at which the local clock reads `naive`; `None` in a spring gap.
    pub fn earliest_utc(self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn first<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<DateTime<Utc>> {
            r.earliest().map(|t| t.with_timezone(&Utc))
        }
        match self {
            Zone::System => first(Local.from_local_datetime(&naive)),
            Zone::Named(tz) => first(tz.from_local_datetime(&naive)),
        }
    }

    /// Whether the local clock ever reads `naive`: false in a spring gap. Checked by a round
    /// trip, because the system zone's conversion (chrono's `Local`) takes the first minute of
    /// a gap (02:00 in Europe/Zurich) as existing; the conversion from UTC has no such edge.
    pub fn exists(self, naive: NaiveDateTime) -> bool {
        self.earliest_utc(naive)
            .is_some_and(|t| self.local(t) == naive)
    }

    /// The last instant at which the local clock reads `naive`: the later of the two in the
    /// autumn repeated hour; in a spring gap, the first instant after it.
    pub fn latest_utc(self, naive: NaiveDateTime) -> DateTime<Utc> {
        fn last<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<DateTime<Utc>> {
            r.latest().map(|t| t.with_timezone(&Utc))
        }
        // A gap is at most a few hours long; past it the clock reads local time again.
        (0..=24 * 60)
            .map(|m| naive + chrono::Duration::minutes(m))
            .find_map(|t| {
                match self {
                    Zone::System => last(Local.from_local_datetime(&t)),
                    Zone::Named(tz) => last(tz.from_local_datetime(&t)),
                }
                .filter(|u| self.local(*u) == t)
            })
            .unwrap_or_else(|| naive.and_utc())
    }
}

pub trait Clock: Send + Sync {
    /// Current instant, for event timestamps, file ages and schedules.
    fn now_utc(&self) -> DateTime<Utc>;
    /// The zone sensor names are written in.
    fn zone(&self) -> Zone {
        Zone::System
    }
    /// Current naive local wall-clock time: the time sensor names are written in.
    fn now_local(&self) -> NaiveDateTime {
        self.zone().local(self.now_utc())
    }
}

/// The machine's clock and time zone.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
