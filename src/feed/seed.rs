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
/// layout, check and zone (a source and streams of its own are fine). Feeds of these two
/// shapes run with the seed's flows; others run by listing (`listing`).
pub fn shape_of(feed: &Feed) -> Option<SeedShape> {
    let shape = if feed.pattern.has_stream() {
        SeedShape::Sensors
    } else {
        SeedShape::Weather
    };
    unlike(feed, shape).is_none().then_some(shape)
}

/// The first way `feed` differs from the seed's feed of its kind (with {stream}: the
/// sensors; without: the weather), said as what to set; `None` when it is of that shape (and
/// the seed's flow runs it; any other feed runs by listing).
pub fn unlike(feed: &Feed, shape: SeedShape) -> Option<String> {
    let seed = match shape {
        SeedShape::Sensors => sensors(FeedSource::Folder(".".into()), StreamMap::default()),
        SeedShape::Weather => weather(FeedSource::Folder(".".into())),
    };
    let sftp = matches!(feed.source, FeedSource::Sftp { .. });
    let differs = [
        (
            feed.pattern.text() != seed.pattern.text(),
            format!("pattern = {:?}", seed.pattern.text()),
        ),
        (
            feed.cadence() != seed.cadence(),
            format!("cadence = \"{}\"", seed.cadence()),
        ),
        (
            feed.layout != seed.layout,
            format!("layout = {:?} (or no layout)", seed.layout),
        ),
        (
            feed.check != seed.check,
            format!("check = \"{}\"", seed.check.name()),
        ),
        (feed.zone.is_some(), "no timezone (the machine's)".into()),
        (
            sftp != (shape == SeedShape::Weather),
            match shape {
                SeedShape::Sensors => "a folder or smb:// source".into(),
                SeedShape::Weather => "an sftp:// source".into(),
            },
        ),
        (
            shape == SeedShape::Weather
                && !matches!(&feed.streams, Streams::Single(a) if a == WEATHER_ALIAS),
            format!("alias = {WEATHER_ALIAS:?}"),
        ),
        // Last: a feed like the seed's in all but its name is told just that.
        (feed.name != seed.name, format!("name = {:?}", seed.name)),
    ];
    differs.into_iter().find(|(d, _)| *d).map(|(_, want)| {
        let seed_name = &seed.name;
        format!("the seed's {seed_name} feed has {want}")
    })
}

/// The seed flow a feed runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedShape {
    Sensors,
    Weather,
}
