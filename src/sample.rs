//! Realistic generated shares, for `ingest demo`, tests and the benchmarks (`tools/gen-share`).
//! Deterministic: the same spec and seed always give the same names and bytes, and each file's
//! mtime is its own minute, as if the sensor gateway had written it then.

use crate::naming::{minute_index, next_minute, SensorName, WeatherName};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ShareSpec {
    /// Apartments, one file per minute each.
    pub apartments: Vec<String>,
    /// First minute of the series.
    pub start: NaiveDateTime,
    /// Minutes to skip from the start (to extend a share generated before).
    pub offset_minutes: i64,
    /// Minutes of data per apartment.
    pub minutes: i64,
    /// Sensor outages: (minute offset from `start`, length) with no file for the first apartment.
    pub gaps: Vec<(i64, i64)>,
    /// Also write names and entries that must be skipped.
    pub bad_names: bool,
    pub seed: u64,
}

impl ShareSpec {
    /// The seed's two apartments from 18.08.2023 10:00, `files` files in total.
    pub fn seed_like(files: u64) -> Self {
        ShareSpec {
            apartments: vec!["JimmyLoup".into(), "JeremieVianin".into()],
            start: NaiveDate::from_ymd_opt(2023, 8, 18)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap(),
            offset_minutes: 0,
            minutes: (files / 2) as i64,
            gaps: Vec::new(),
            bad_names: false,
            seed: 42,
        }
    }
}

/// Writes the share into `dir` (created if missing); returns the number of sensor files.
pub fn write_share(dir: &Path, spec: &ShareSpec) -> io::Result<u64> {
    fs::create_dir_all(dir)?;
    let mut written = 0;
    let mut minute = spec.start + Duration::minutes(spec.offset_minutes);
    for i in spec.offset_minutes..spec.offset_minutes + spec.minutes {
        for (a, apartment) in spec.apartments.iter().enumerate() {
            if a == 0 && spec.gaps.iter().any(|&(s, len)| i >= s && i < s + len) {
                continue;
            }
            let name = SensorName::new(minute, apartment);
            let body = sensor_json(spec.seed, &name);
            write_file(&dir.join(name.to_string()), body.as_bytes(), minute)?;
            written += 1;
        }
        minute = next_minute(minute);
    }
    if spec.bad_names {
        write_bad_entries(dir, spec.start)?;
    }
    Ok(written)
}

/// Names an operator will find on a real share next to the data: all must be skipped.
pub const BAD_NAMES: [&str; 6] = [
    "notes.txt",
    "18.08.2023 1000_JimmyLoup_received.json.tmp",
    "~18.08.2023 1001_JimmyLoup_received.json",
    "31.02.2023 1000_JimmyLoup_received.json",
    "18.08.2023 2460_JeremieVianin_received.json",
    "18.08.2023 1000_Nobody_received.json",
];

fn write_bad_entries(dir: &Path, when: NaiveDateTime) -> io::Result<()> {
    for name in BAD_NAMES {
        write_file(&dir.join(name), b"{}", when)?;
    }
    // A folder that looks like a sensor file.
    fs::create_dir_all(dir.join("01.01.2023 0000_JimmyLoup_received.json"))?;
    Ok(())
}

/// Writes the weather forecasts: one `Pred_YYYY-MM-DD.csv` per day.
pub fn write_weather(dir: &Path, first: NaiveDate, days: u32, seed: u64) -> io::Result<u32> {
    fs::create_dir_all(dir)?;
    for d in 0..days {
        let date = first + Duration::days(i64::from(d));
        let mut rng = Rng::new(seed ^ u64::from(d));
        let mut csv = String::from("timestamp,temperature,humidity,radiation,wind\n");
        for h in 0..24 {
            let t = 12.0 + rng.unit() * 15.0;
            let _ = writeln!(
                csv,
                "{date}T{h:02}:00,{t:.1},{:.0},{:.0},{:.1}",
                40.0 + rng.unit() * 50.0,
                rng.unit() * 800.0,
                rng.unit() * 9.0
            );
        }
        let name = WeatherName { date }.to_string();
        write_file(
            &dir.join(name),
            csv.as_bytes(),
            date.and_hms_opt(6, 0, 0).unwrap(),
        )?;
    }
    Ok(days)
}

fn write_file(path: &Path, bytes: &[u8], minute: NaiveDateTime) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    let secs = minute.and_utc().timestamp().max(0) as u64;
    f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

const ROOMS: [&str; 5] = ["living", "kitchen", "bedroom", "bathroom", "office"];

/// A ~1.5 KB JSON document like the gateways write: one reading per sensor and room.
pub fn sensor_json(seed: u64, name: &SensorName) -> String {
    let mut rng = Rng::new(seed ^ minute_index(name.minute) as u64 ^ hash_str(&name.apartment));
    let mut s = String::with_capacity(1600);
    let _ = write!(
        s,
        "{{\"apartment\":\"{}\",\"timestamp\":\"{}\",\"gateway\":\"gw-{:04}\",\"readings\":[",
        name.apartment,
        name.minute.format("%Y-%m-%dT%H:%M:00"),
        hash_str(&name.apartment) % 10_000
    );
    for (i, room) in ROOMS.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            s,
            "{sep}{{\"room\":\"{room}\",\"temperature\":{:.2},\"humidity\":{:.1},\"co2\":{},\"luminosity\":{},\"motion\":{},\"door_open\":{},\"battery\":{},\"rssi\":{}}}",
            18.0 + rng.unit() * 8.0,
            30.0 + rng.unit() * 40.0,
            400 + (rng.next() % 900),
            rng.next() % 1000,
            rng.next().is_multiple_of(2),
            rng.next().is_multiple_of(7),
            50 + rng.next() % 50,
            -(40 + (rng.next() % 50) as i64),
        );
    }
    let _ = write!(s, "],\"power\":{{\"total_w\":{:.1},\"heating_w\":{:.1},\"plugs_w\":{:.1}}},\"status\":\"ok\"}}", rng.unit() * 3000.0, rng.unit() * 1500.0, rng.unit() * 400.0);
    s
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// splitmix64: tiny, deterministic, good enough for test data (a seed names the same data on
/// every machine).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    #[allow(clippy::should_implement_trait)] // a draw, not an `Option`: it never runs out
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
