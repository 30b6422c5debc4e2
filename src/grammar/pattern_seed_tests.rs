//! The seed's two grammars in `naming`, written as feed patterns, agree with it: they format the
//! same names and read every name, valid, mutated or random, to the same values and the same
//! errors (so a feed declared with them records the same `NameError` codes in the event log).

use super::tests::{any_bytes, any_slot, at};
use super::*;
use crate::naming::{SensorName, WeatherName};
use proptest::prelude::*;
use proptest::sample::{select, Index};

const SENSOR_PATTERN: &str = "{DD}.{MM}.{YYYY} {HH}{mi}_{stream}_received.json";
const WEATHER_PATTERN: &str = "Pred_{YYYY}-{MM}-{DD}.csv";

/// The seed's example names parse through their patterns to the values `naming` gives.
#[test]
fn seed_patterns_read_the_seed_examples() {
    let sensors = Pattern::parse(SENSOR_PATTERN, Cadence::MINUTE).unwrap();
    let name = "18.08.2023 1000_JimmyLoup_received.json";
    let parsed = sensors.parse_name(name).unwrap();
    assert_eq!(parsed.stream.as_deref(), Some("JimmyLoup"));
    assert_eq!(parsed.slot, at(2023, 8, 18, 10, 0));
    assert_eq!(sensors.format(Some("JimmyLoup"), parsed.slot), name);
    assert!(sensors.has_stream());
    assert_eq!(sensors.text(), SENSOR_PATTERN);
    assert_eq!(sensors.to_string(), SENSOR_PATTERN);
    let weather = Pattern::parse(WEATHER_PATTERN, Cadence::DAY).unwrap();
    let parsed = weather.parse_name("Pred_2023-08-18.csv").unwrap();
    assert_eq!(
        parsed,
        Parsed {
            stream: None,
            slot: at(2023, 8, 18, 0, 0)
        }
    );
    assert_eq!(weather.format(None, parsed.slot), "Pred_2023-08-18.csv");
    assert!(!weather.has_stream());
    assert_eq!(
        weather.parse_name_bytes(b"Pred_\xff.csv"),
        Err(NameError::NotUtf8)
    );
}

/// Chars a mutated name draws from: what the grammar has, and what it must refuse.
const MUTATION_CHARS: [char; 14] = [
    '0', '5', '9', 'a', 'Z', '.', '_', ' ', '-', '/', '\\', 'é', '\0', '😀',
];

/// Up to three edits (delete, insert, replace, truncate, flip case) of `name`, on chars.
fn mutate(name: &str, edits: &[(u8, Index, char)]) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    for (kind, at, c) in edits {
        let len = chars.len();
        match kind {
            0 if len > 0 => {
                chars.remove(at.index(len));
            }
            1 => chars.insert(at.index(len + 1), *c),
            2 if len > 0 => chars[at.index(len)] = *c,
            3 => chars.truncate(at.index(len + 1)),
            4 if len > 0 => {
                let i = at.index(len);
                let flipped = if chars[i].is_ascii_uppercase() {
                    chars[i].to_ascii_lowercase()
                } else {
                    chars[i].to_ascii_uppercase()
                };
                chars[i] = flipped;
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn edits() -> impl Strategy<Value = Vec<(u8, Index, char)>> {
    proptest::collection::vec(
        (0u8..5, any::<Index>(), select(MUTATION_CHARS.to_vec())),
        0..4,
    )
}

proptest! {
    /// The seed's sensor grammar as a pattern formats exactly as `SensorName` and reads every
    /// name, valid or mutated, exactly as `SensorName::parse`: same values, same errors.
    #[test]
    fn sensor_pattern_agrees_with_sensor_name(
        minute in any_slot(Cadence::MINUTE),
        apartment in "[A-Za-z0-9]{1,70}",
        edits in edits(),
    ) {
        let pattern = Pattern::parse(SENSOR_PATTERN, Cadence::MINUTE).unwrap();
        let name = SensorName::new(minute, &apartment).to_string();
        if apartment.len() <= 64 {
            prop_assert_eq!(pattern.format(Some(&apartment), minute), name.clone());
        }
        let text = mutate(&name, &edits);
        let ours = pattern.parse_name(&text).map(|p| (p.stream, p.slot));
        let seed = SensorName::parse(&text).map(|n| (Some(n.apartment), n.minute));
        prop_assert_eq!(ours, seed, "{:?}", text);
    }

    /// The same for any text and any bytes, not only names near a valid one.
    #[test]
    fn sensor_pattern_agrees_on_any_bytes(bytes in any_bytes(50), text in ".{0,40}") {
        let pattern = Pattern::parse(SENSOR_PATTERN, Cadence::MINUTE).unwrap();
        let ours = pattern.parse_name_bytes(&bytes).map(|p| (p.stream, p.slot));
        let seed = SensorName::parse_bytes(&bytes).map(|n| (Some(n.apartment), n.minute));
        prop_assert_eq!(ours, seed);
        let ours = pattern.parse_name(&text).map(|p| (p.stream, p.slot));
        let seed = SensorName::parse(&text).map(|n| (Some(n.apartment), n.minute));
        prop_assert_eq!(ours, seed);
    }

    /// The seed's forecast grammar as a daily pattern formats exactly as `WeatherName` and reads
    /// every name, valid or mutated, exactly as `WeatherName::parse`.
    #[test]
    fn weather_pattern_agrees_with_weather_name(
        day in any_slot(Cadence::DAY),
        edits in edits(),
        text in ".{0,25}",
    ) {
        let pattern = Pattern::parse(WEATHER_PATTERN, Cadence::DAY).unwrap();
        let name = WeatherName { date: day.date() }.to_string();
        prop_assert_eq!(pattern.format(None, day), name.clone());
        for text in [mutate(&name, &edits), text] {
            let ours = pattern.parse_name(&text).map(|p| (p.stream, p.slot));
            let seed = WeatherName::parse(&text).map(|w| (None, w.date.and_time(NaiveTime::MIN)));
            prop_assert_eq!(ours, seed, "{:?}", text);
        }
    }
}
