//! Time arguments (`--since`): `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` (local time) or RFC 3339.

use crate::error::{Error, Result};
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
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
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| Error::Config(format!("time `{s}` does not exist in the local time zone")))
}

/// A time argument as a naive local minute, the clock sensor names are written in. The naive
/// forms are taken as written (no round trip through UTC, so DST cannot shift them).
pub fn parse_local_minute(s: &str) -> Result<NaiveDateTime> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M") {
        return Ok(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    let t = parse_time(s)?.with_timezone(&Local).naive_local();
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

    #[test]
    fn accepts_the_three_forms_and_rejects_garbage() {
        assert_eq!(
            parse_time("2023-08-18T10:00:00Z").unwrap().to_rfc3339(),
            "2023-08-18T10:00:00+00:00"
        );
        assert!(parse_time("2023-08-18").is_ok());
        assert!(parse_time("2023-08-18T10:00").is_ok());
        for bad in [
            "",
            "yesterday",
            "2023-13-01",
            "2023-08-18 10:00",
            "18.08.2023",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
