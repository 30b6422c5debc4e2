//! When the nightly reconcile is due. Pure functions of the instant and the zone, so the
//! daemon's schedule can be tested at any instant, including a restart in the middle of the
//! night and the nights of the DST changes.

use crate::clock::Zone;
use chrono::{DateTime, Duration, Utc};

/// How long to wait before retry number `attempt` (0 for the first retry): `base`, doubled
/// for each further attempt, never more than `cap`. A flaky server gets a few quick retries;
/// a server that is down is not hammered.
pub fn backoff(
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
) -> std::time::Duration {
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

/// The reconcile is due when none has completed since the most recent `nightly_hour` (local).
/// A daemon down at that hour therefore reconciles at its next pass, and one that already
/// reconciled tonight does not do it twice.
pub fn reconcile_due(
    zone: Zone,
    last_ms: Option<u64>,
    now: DateTime<Utc>,
    nightly_hour: u32,
) -> bool {
    let Some(last) = last_ms else { return true };
    (last as i64) < last_boundary(zone, now, nightly_hour).timestamp_millis()
}

/// The latest instant at or before `now` when the local clock read `nightly_hour`:00. On the
/// night of the autumn repeat the first of the two is taken; when the hour does not exist
/// (spring gap), the boundary is the first instant after the gap.
pub fn last_boundary(zone: Zone, now: DateTime<Utc>, nightly_hour: u32) -> DateTime<Utc> {
    let today = zone.local(now).date();
    for days_back in 0..3 {
        let day = today - Duration::days(days_back);
        let Some(naive) = day.and_hms_opt(nightly_hour, 0, 0) else {
            continue;
        };
        let at = zone
            .earliest_utc(naive)
            .or_else(|| zone.earliest_utc(naive + Duration::hours(1)));
        if let Some(t) = at.filter(|t| *t <= now) {
            return t;
        }
    }
    now - Duration::days(1)
}

/// The next boundary strictly after `now`.
pub fn next_boundary(zone: Zone, now: DateTime<Utc>, nightly_hour: u32) -> DateTime<Utc> {
    let mut probe = now + Duration::hours(1);
    while last_boundary(zone, probe, nightly_hour) <= now {
        probe += Duration::hours(1);
    }
    last_boundary(zone, probe, nightly_hour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ZURICH: Zone = Zone::Named(chrono_tz::Europe::Zurich);

    fn zurich(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Europe::Zurich
            .with_ymd_and_hms(y, m, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let (base, cap) = (
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(60),
        );
        let waits: Vec<u64> = (0..7).map(|a| backoff(a, base, cap).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(200, base, cap), cap, "no overflow on long outages");
    }

    #[test]
    fn due_without_any_reconcile_and_not_twice_a_night() {
        let now = zurich(2023, 8, 18, 0, 30);
        assert!(reconcile_due(ZURICH, None, now, 0));
        let at_midnight = zurich(2023, 8, 18, 0, 0).timestamp_millis() as u64;
        assert!(
            !reconcile_due(ZURICH, Some(at_midnight), now, 0),
            "restart at 00:30: done already"
        );
        let two_days_ago = (now - Duration::days(2)).timestamp_millis() as u64;
        assert!(
            reconcile_due(ZURICH, Some(two_days_ago), now, 0),
            "a missed night is caught up"
        );
    }

    #[test]
    fn boundaries_on_dst_nights_exist_once() {
        // Spring: 26.03.2023 02:00 does not exist in Zurich; a 02:00 reconcile runs at 03:00.
        let b = last_boundary(ZURICH, zurich(2023, 3, 26, 4, 0), 2);
        assert_eq!(b, zurich(2023, 3, 26, 3, 0));
        // Autumn: 29.10.2023 02:00 happens twice; the boundary is the first one only.
        let first = zurich(2023, 10, 29, 2, 0);
        let later = first + Duration::minutes(90);
        assert_eq!(last_boundary(ZURICH, later, 2), first);
        assert_eq!(next_boundary(ZURICH, first, 2), zurich(2023, 10, 30, 2, 0));
    }
}
