//! When the nightly reconcile is due. Pure functions of the clock, so the daemon's schedule can
//! be tested at any instant, including a restart in the middle of the night.

use chrono::{DateTime, Duration, Local, TimeZone, Utc};

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
pub fn reconcile_due(last_ms: Option<u64>, now: DateTime<Utc>, nightly_hour: u32) -> bool {
    let Some(last) = last_ms else { return true };
    let boundary = last_boundary(now, nightly_hour);
    (last as i64) < boundary.timestamp_millis()
}

/// The latest instant at or before `now` when the local clock read `nightly_hour`:00.
fn last_boundary(now: DateTime<Utc>, nightly_hour: u32) -> DateTime<Utc> {
    let local = now.with_timezone(&Local).date_naive();
    for days_back in 0..3 {
        let day = local - Duration::days(days_back);
        let Some(naive) = day.and_hms_opt(nightly_hour, 0, 0) else {
            continue;
        };
        // `earliest` handles the autumn repeat; a boundary inside the spring gap is skipped.
        if let Some(t) = Local.from_local_datetime(&naive).earliest() {
            let t = t.with_timezone(&Utc);
            if t <= now {
                return t;
            }
        }
    }
    now - Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let now = Utc::now();
        assert!(reconcile_due(None, now, 0));
        let just_now = now.timestamp_millis() as u64;
        assert!(
            !reconcile_due(Some(just_now), now, 0),
            "a fresh reconcile is not due again"
        );
        let two_days_ago = (now - Duration::days(2)).timestamp_millis() as u64;
        assert!(
            reconcile_due(Some(two_days_ago), now, 0),
            "a missed night is caught up"
        );
    }
}
