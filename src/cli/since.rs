//! Time arguments (`--since`): `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` (local time) or RFC 3339.

use crate::clock::Zone;
use crate::error::{Error, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A time argument as an instant; the naive forms are read in the machine's zone.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    parse_time_in(s, Zone::System)
}

/// [`parse_time`] with the naive forms read in `zone`: the first instant the local clock
/// reads that time (the earlier one in the autumn repeated hour), an error in a spring gap.
fn parse_time_in(s: &str, zone: Zone) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).unwrap())
        })
        .map_err(|_| {
            Error::Config(format!(
                "time `{s}` is not YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339"
            ))
        })?;
    zone.earliest_utc(naive)
        .ok_or_else(|| Error::Config(format!("time `{s}` does not exist in the local time zone")))
}

/// A time argument as a naive local minute, the clock sensor names are written in. The naive
/// forms are taken as written (no round trip through UTC, so DST cannot shift them).
pub fn parse_local_minute(s: &str) -> Result<NaiveDateTime> {
    parse_local_minute_in(s, Zone::System)
}

/// [`parse_local_minute`] with an RFC 3339 instant read on the clock of `zone`.
fn parse_local_minute_in(s: &str, zone: Zone) -> Result<NaiveDateTime> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        return Ok(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    let t = zone.local(parse_time_in(s, zone)?);
    Ok(crate::naming::truncate_to_minute(t))
}

/// [`parse_local_minute`] for a command-line option: the error names the option.
pub fn local_minute_arg(option: &str, s: &str) -> Result<NaiveDateTime> {
    parse_local_minute(s).map_err(|e| match e {
        Error::Config(msg) => Error::Config(format!("{option}: {msg}")),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zone the tests read local times in, pinned: the machine's zone would make the
    /// expected instants depend on where the tests run.
    const ZURICH: Zone = Zone::Named(chrono_tz::Europe::Zurich);

    fn instant(s: &str) -> String {
        parse_time_in(s, ZURICH).unwrap().to_rfc3339()
    }

    fn minute(s: &str) -> String {
        let t = parse_local_minute_in(s, ZURICH).unwrap();
        t.format("%Y-%m-%dT%H:%M").to_string()
    }

    #[test]
    fn accepts_the_three_forms_and_rejects_garbage() {
        assert_eq!(instant("2023-08-18T10:00:00Z"), "2023-08-18T10:00:00+00:00");
        assert_eq!(
            instant("2023-08-18T12:00:00+02:00"),
            "2023-08-18T10:00:00+00:00"
        );
        // Local midnight and 10:00 in summer (CEST, UTC+2) and in winter (CET, UTC+1).
        assert_eq!(instant("2023-08-18"), "2023-08-17T22:00:00+00:00");
        assert_eq!(instant("2023-08-18T10:00"), "2023-08-18T08:00:00+00:00");
        assert_eq!(instant("2023-01-18T10:00"), "2023-01-18T09:00:00+00:00");
        for bad in [
            "",
            "yesterday",
            "2023-13-01",
            "2023-08-18 10:00",
            "18.08.2023",
        ] {
            let err = parse_time_in(bad, ZURICH).unwrap_err().to_string();
            assert!(err.contains("is not YYYY-MM-DD"), "{bad}: {err}");
        }
    }

    /// Across DST: the autumn repeated hour is its first instant (still CEST), a time the
    /// spring gap skips is refused, naming it.
    #[test]
    fn local_times_across_dst_are_the_first_instant_and_gaps_are_refused() {
        assert_eq!(instant("2023-10-29T02:30"), "2023-10-29T00:30:00+00:00");
        assert_eq!(instant("2023-10-29T03:00"), "2023-10-29T02:00:00+00:00");
        let err = parse_time_in("2023-03-26T02:30", ZURICH).unwrap_err();
        assert!(
            err.to_string()
                .contains("`2023-03-26T02:30` does not exist"),
            "{err}"
        );
    }

    /// The naive forms are the minute as written; an RFC 3339 instant is read on the zone's
    /// clock and truncated to its minute.
    #[test]
    fn a_local_minute_is_taken_as_written_or_read_on_the_zones_clock() {
        assert_eq!(minute("2023-08-18T10:07"), "2023-08-18T10:07");
        assert_eq!(minute("2023-08-18"), "2023-08-18T00:00");
        assert_eq!(minute("2023-03-26T02:30"), "2023-03-26T02:30");
        assert_eq!(minute("2023-08-18T08:07:59Z"), "2023-08-18T10:07");
        assert_eq!(minute("2023-01-18T08:07:59Z"), "2023-01-18T09:07");
    }
}
