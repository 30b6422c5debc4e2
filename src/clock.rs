//! Where "now" comes from. The core never reads the system clock directly, so tests can drive
//! days of schedule with a manual clock or tokio's paused time (`testing`), in any
//! time zone ([`Zone`]), and prediction can be checked at any wall-clock time.

use chrono::{DateTime, Duration, Local, NaiveDateTime, Utc};

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

    /// Every instant at which the local clock reads `naive`, earliest first: none in a spring
    /// gap, two in the autumn repeated hour. Found through the conversion from UTC, which is
    /// exact in every zone, never through chrono's conversion from local time: for the
    /// system zone (`Local`) that one lists the repeated hour's two instants latest first and
    /// takes 03:00, the first minute after it, as repeated too (chrono 0.4.45 with
    /// TZ=Europe/Zurich), which once raised a false silence alert every autumn night.
    pub fn instants(self, naive: NaiveDateTime) -> Vec<DateTime<Utc>> {
        let as_utc = naive.and_utc();
        // The zone's offsets within a day and a half either side: a zone changes its offset
        // at most once in that span, so both sides of any change near `naive` are among them.
        let mut offsets: Vec<Duration> = (-3..=3)
            .map(|half_days| {
                let t = as_utc + Duration::hours(12 * half_days);
                self.local(t) - t.naive_utc()
            })
            .collect();
        offsets.sort();
        offsets.dedup();
        let mut found: Vec<DateTime<Utc>> = offsets
            .into_iter()
            .map(|offset| as_utc - offset)
            .filter(|t| self.local(*t) == naive)
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// The first instant at which the local clock reads `naive`; `None` in a spring gap.
    pub fn earliest_utc(self, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
        self.instants(naive).first().copied()
    }

    /// Whether the local clock ever reads `naive`: false in a spring gap.
    pub fn exists(self, naive: NaiveDateTime) -> bool {
        !self.instants(naive).is_empty()
    }

    /// Whether the local clock shows any minute of the `minutes` long slot starting at `slot`:
    /// a slot of a spring-forward hour shows none (no file can be named by it).
    pub fn shows(self, slot: NaiveDateTime, minutes: u32) -> bool {
        self.exists(slot)
            || (1..i64::from(minutes)).any(|m| self.exists(slot + Duration::minutes(m)))
    }

    /// Whether the local clock reads `naive` twice (the autumn repeated hour).
    pub fn is_repeated(self, naive: NaiveDateTime) -> bool {
        self.instants(naive).len() > 1
    }

    /// The last instant at which the local clock reads `naive`: the later of the two in the
    /// autumn repeated hour; in a spring gap, the first instant after it.
    pub fn latest_utc(self, naive: NaiveDateTime) -> DateTime<Utc> {
        // A gap is at most a few hours long; past it the clock reads local time again.
        (0..=24 * 60)
            .map(|m| naive + Duration::minutes(m))
            .find_map(|t| self.instants(t).last().copied())
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
