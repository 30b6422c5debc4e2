//! The seed's two flows as feeds: what `SMB_PATH`, `--stream` and `SFTP_*` declare when no
//! `[[feed]]` table says otherwise, and the shapes the sensor and weather flows run.

use super::{Cadence, Check, Feed, FeedSource, Pattern, Streams};
use crate::config::StreamMap;

/// The sensor files: one per apartment and minute.
pub const SENSOR_PATTERN: &str = "{DD}.{MM}.{YYYY} {HH}{mi}_{stream}_received.json";
/// The weather forecasts: one per day.
pub const WEATHER_PATTERN: &str = "Pred_{YYYY}-{MM}-{DD}.csv";
/// The weather feed's one Bronze alias (reserved for it among the sensor streams).
pub const WEATHER_ALIAS: &str = "weather";

/// The seed's sensor feed over `source` with `streams`.
pub fn sensors(source: FeedSource, streams: StreamMap) -> Feed {
    Feed {
        name: "sensors".into(),
        source,
        pattern: Pattern::parse(SENSOR_PATTERN, Cadence::MINUTE).expect("the seed's pattern"),
        streams: Streams::Named(streams),
        layout: Feed::default_layout(Cadence::MINUTE).into(),
        check: Check::Json,
        zone: None,
        silence_minutes: None,
    }
}

/// The seed's weather feed over `source`.
pub fn weather(source: FeedSource) -> Feed {
    Feed {
        name: "weather".into(),
        source,
        pattern: Pattern::parse(WEATHER_PATTERN, Cadence::DAY).expect("the seed's pattern"),
        streams: Streams::Single(WEATHER_ALIAS.into()),
        layout: Feed::default_layout(Cadence::DAY).into(),
        check: Check::None,
        zone: None,
        silence_minutes: None,
    }
}

/// Which of the seed's flows runs `feed`, if its shape is one of theirs: the same pattern,
/// layout, check and zone (a source and streams of its own are fine). This release runs
/// feeds of these two shapes; others are declared and checked, not yet run.
pub fn shape_of(feed: &Feed) -> Option<SeedShape> {
    let same = |pattern: &str, check: Check| {
        feed.pattern.text() == pattern
            && feed.layout == Feed::default_layout(feed.cadence())
            && feed.check == check
            && feed.zone.is_none()
    };
    if same(SENSOR_PATTERN, Check::Json) && !matches!(feed.source, FeedSource::Sftp { .. }) {
        Some(SeedShape::Sensors)
    } else if same(WEATHER_PATTERN, Check::None)
        && matches!(&feed.streams, Streams::Single(a) if a == WEATHER_ALIAS)
        && matches!(feed.source, FeedSource::Sftp { .. })
    {
        Some(SeedShape::Weather)
    } else {
        None
    }
}

/// The seed flow a feed runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedShape {
    Sensors,
    Weather,
}
