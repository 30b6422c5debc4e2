//! Where "now" comes from. The core never reads the system clock directly, so tests can drive
//! days of schedule with a [`ManualClock`] and prediction can be checked at any wall-clock time.

use chrono::{DateTime, Local, NaiveDateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync {
    /// Current instant, for event timestamps and file ages.
    fn now_utc(&self) -> DateTime<Utc>;
    /// Current naive local wall-clock time: the time sensor names are written in.
    fn now_local(&self) -> NaiveDateTime;
}

/// The machine's clock and time zone.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn now_local(&self) -> NaiveDateTime {
        Local::now().naive_local()
    }
}

/// A clock that only moves when told to; local time is UTC plus a fixed offset.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(DateTime<Utc>, chrono::Duration)>,
}

impl ManualClock {
    pub fn new(now_utc: DateTime<Utc>, local_offset: chrono::Duration) -> Self {
        ManualClock {
            state: Mutex::new((now_utc, local_offset)),
        }
    }

    /// A clock whose local time is `local` (offset zero).
    pub fn at_local(local: NaiveDateTime) -> Self {
        Self::new(local.and_utc(), chrono::Duration::zero())
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += by;
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
    fn now_local(&self) -> NaiveDateTime {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0.naive_utc() + s.1
    }
}
