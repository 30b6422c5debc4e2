//! A feed places its files: for the seed's two feeds exactly where the seed's layout does
//! (`layout::sensor_rel`, `layout::weather_rel`), for any other by its own layout.

use super::*;
use crate::bronze::layout::{sensor_rel, weather_rel};
use crate::naming::{SensorName, WeatherName};
use chrono::{Duration, NaiveDate};
use proptest::prelude::*;

fn seed_streams() -> StreamMap {
    StreamMap::parse(&[crate::config::DEFAULT_STREAMS.into()]).unwrap()
}

fn any_minute() -> impl Strategy<Value = NaiveDateTime> {
    (0i64..(200 * 365 * 1440)).prop_map(|m| {
        NaiveDate::from_ymd_opt(1950, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + Duration::minutes(m)
    })
}

proptest! {
    /// The seed's sensor feed puts every file exactly where the seed's layout does.
    #[test]
    fn the_sensor_feed_places_files_as_the_seed_layout_does(minute in any_minute(), jimmy in any::<bool>()) {
        let feed = seed::sensors(FeedSource::Folder("share".into()), seed_streams());
        let (apartment, alias) = if jimmy { ("JimmyLoup", "jimmy") } else { ("JeremieVianin", "jeremie") };
        let name = SensorName::new(minute, apartment);
        let located = feed.locate(&name.to_string()).expect("a seed name");
        prop_assert_eq!(&located.rel, &sensor_rel(alias, &name));
        prop_assert_eq!(located.slot, minute);
        prop_assert_eq!(located.alias.as_str(), alias);
    }

    /// The seed's weather feed puts every forecast exactly where the seed's layout does.
    #[test]
    fn the_weather_feed_places_files_as_the_seed_layout_does(minute in any_minute()) {
        let feed = seed::weather(FeedSource::Folder("meteo".into()));
        let name = WeatherName { date: minute.date() };
        let located = feed.locate(&name.to_string()).expect("a seed name");
        prop_assert_eq!(&located.rel, &weather_rel(&name));
    }
}

/// Another feed places files by its own layout; a stream it does not declare, or a name its
/// pattern refuses, is not placed at all.
#[test]
fn a_feed_places_by_its_own_layout_and_nothing_undeclared() {
    let streams = StreamMap::parse(&["A1=meter-a1".into()]).unwrap();
    let cadence = Cadence::parse("5m").unwrap();
    let feed = Feed {
        name: "meter".into(),
        source: FeedSource::Folder("m".into()),
        pattern: Pattern::parse("meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv", cadence).unwrap(),
        streams: Streams::Named(streams),
        layout: "{alias}/{YYYY}/{MM}".into(),
        check: Check::Csv,
        zone: None,
        silence_minutes: None,
    };
    let located = feed.locate("meter_A1_20260329T0205.csv").unwrap();
    assert_eq!(located.rel, "meter-a1/2026/03/meter_A1_20260329T0205.csv");
    assert_eq!(located.alias, "meter-a1");
    assert_eq!(
        feed.locate("meter_B2_20260329T0205.csv"),
        None,
        "undeclared stream"
    );
    assert_eq!(
        feed.locate("meter_A1_20260329T0203.csv"),
        None,
        "off the 5-minute grid"
    );
    assert_eq!(feed.locate(".meter_A1_20260329T0205.csv.ingest-tmp"), None);
}
