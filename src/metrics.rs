//! What the daemon tells a monitoring system (Prometheus): counters of what its passes did,
//! gauges of the state the store describes (each stream's newest minute and missing minutes,
//! the store's size), and whether every flow's last pass succeeded (readiness).
//!
//! Counters start at zero with the process, as Prometheus expects; the gauges that describe
//! the store are read from it at start, so a restart does not reset them. Every update is a
//! few atomic operations on the pass's own thread; a scrape only reads them, so serving one
//! never holds up a pass. Labels come from closed sets (flows, configured streams, outcomes,
//! error kinds): a hostile file name cannot grow the series.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::feed::Feed;
use crate::freshness;
use crate::record::{PassReport, Tally, WeatherReport, OTHER_STREAM, WEATHER_STREAM};
use crate::store::feeds::stream_key;
use crate::store::Store;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A flow of the daemon: the `flow` label. The seed's two feeds are the flows `sensors` and
/// `weather`; a feed declared in the config file is a flow of its own, by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    Sensors,
    Weather,
    /// A declared feed (`listing`), by name.
    Feed(String),
}

impl Flow {
    pub fn label(&self) -> &str {
        match self {
            Flow::Sensors => "sensors",
            Flow::Weather => "weather",
            Flow::Feed(name) => name,
        }
    }
}

/// The Content-Type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const OUTCOMES: [&str; 5] = ["copied", "adopted", "skipped", "failed", "deferred"];

/// Pass durations from a caught-up prediction pass (milliseconds) to a first ingest or a
/// reconcile through a slow mount (minutes).
const DURATION_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Where a flow stands, for `/readyz`.
#[derive(Debug, Clone)]
enum Readiness {
    NoPassYet,
    Ok,
    Failing(String),
}

/// The daemon's metrics and readiness; shared by its flows and the endpoint.
pub struct Metrics {
    registry: Registry,
    /// Configured sensor streams; files of any other apartment count as
    /// [`OTHER_STREAM`] (`_other`).
    streams: Vec<String>,
    /// Each declared feed's stream labels (its `{stream}` values, or its alias); a file of
    /// another counts as [`OTHER_STREAM`].
    feeds: BTreeMap<String, Vec<String>>,
    files: IntCounterVec,
    bytes: IntCounterVec,
    pass_duration: HistogramVec,
    lookups: IntCounterVec,
    listings: IntCounterVec,
    last_success: GaugeVec,
    last_ok: IntGaugeVec,
    newest_minute: IntGaugeVec,
    missing: IntGaugeVec,
    errors: IntCounterVec,
    store_bytes: IntGauge,
    log_events: IntGauge,
    log_shipped: IntGauge,
    readiness: Mutex<BTreeMap<Flow, Readiness>>,
}

impl Metrics {
    /// The metrics of a daemon running `flows` over the sensor `streams`; every series a
    /// flow can have starts at zero, so rates and alerts work from the first scrape.
    pub fn new(flows: &[Flow], streams: &[String]) -> Metrics {
        Metrics::with_feeds(flows, streams, BTreeMap::new())
    }

    /// [`Metrics::new`] with declared feeds among `flows`, each with its stream labels.
    pub fn with_feeds(
        flows: &[Flow],
        streams: &[String],
        feeds: BTreeMap<String, Vec<String>>,
    ) -> Metrics {
        let registry =
            Registry::new_custom(Some("ingest".into()), None).expect("a constant, valid prefix");
        let r = Register(&registry);
        r.int_gauges(
            "build_info",
            "Always 1; the version of the running binary.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        let m = Metrics {
            streams: streams.to_vec(),
            feeds,
            files: r.counters(
                "files_total",
                "Files by outcome of the pass that handled them.",
                &["flow", "stream", "outcome"],
            ),
            bytes: r.counters(
                "bytes_total",
                "Bytes copied into Bronze.",
                &["flow", "stream"],
            ),
            pass_duration: r.histograms(
                "pass_duration_seconds",
                "How long a pass took.",
                &["flow", "mode"],
            ),
            lookups: r.counters(
                "source_lookups_total",
                "Metadata lookups of single files on the source.",
                &["flow"],
            ),
            listings: r.counters(
                "source_listings_total",
                "Listings of the whole source.",
                &["flow"],
            ),
            last_success: r.gauges(
                "last_pass_success_timestamp_seconds",
                "When a pass of the flow last succeeded (Unix time).",
                &["flow"],
            ),
            last_ok: r.int_gauges(
                "last_pass_ok",
                "1 when the flow's last pass succeeded, 0 when it failed.",
                &["flow"],
            ),
            newest_minute: r.int_gauges(
                "newest_minute_timestamp_seconds",
                "The stream's newest ingested minute (Unix time of its real instant).",
                &["stream"],
            ),
            missing: r.int_gauges(
                "missing_files",
                "Expected minutes (one file each) the stream never delivered, as `ingest gaps` counts them: in the last 24 h of the index (window=24h) or in all (window=total). Named _files, not _minutes: Prometheus naming keeps units to base units.",
                &["stream", "window"],
            ),
            errors: r.counters(
                "errors_total",
                "Passes that failed as a whole, by kind of failure.",
                &["flow", "kind"],
            ),
            store_bytes: r.int_gauge("store_bytes", "Size of the event store file."),
            log_events: r.int_gauge(
                "log_events",
                "Events in the store's log.",
            ),
            log_shipped: r.int_gauge(
                "log_shipped_events",
                "Events of the log shipped into Bronze; log_events minus this is what losing \
                 the machine now would lose.",
            ),
            readiness: Mutex::new(flows.iter().map(|f| (f.clone(), Readiness::NoPassYet)).collect()),
            registry,
        };
        for flow in flows {
            m.start_series(flow);
        }
        m
    }

    fn start_series(&self, flow: &Flow) {
        let f = flow.label();
        let streams: Vec<&str> = match flow {
            Flow::Sensors => self.streams.iter().map(String::as_str).collect(),
            Flow::Weather => vec![WEATHER_STREAM],
            Flow::Feed(name) => (self.feeds.get(name).into_iter().flatten())
                .map(String::as_str)
                .collect(),
        };
        for stream in streams {
            for outcome in OUTCOMES {
                self.files.with_label_values(&[f, stream, outcome]);
            }
            self.bytes.with_label_values(&[f, stream]);
        }
        self.lookups.with_label_values(&[f]);
        self.listings.with_label_values(&[f]);
        for kind in Error::KINDS {
            self.errors.with_label_values(&[f, kind]);
        }
    }

    /// A sensor pass that finished.
    pub fn sensor_pass(&self, r: &PassReport) {
        self.flow_pass(Flow::Sensors, r);
    }

    /// A declared feed's pass that finished.
    pub fn feed_pass(&self, feed: &str, r: &PassReport) {
        self.flow_pass(Flow::Feed(feed.to_owned()), r);
    }

    fn flow_pass(&self, f: Flow, r: &PassReport) {
        self.files_handled(f.clone(), &r.tally);
        self.lookups
            .with_label_values(&[f.label()])
            .inc_by(r.work.lookups);
        self.listings
            .with_label_values(&[f.label()])
            .inc_by(r.work.listings);
        self.passed(f, r.mode, r.millis);
    }

    /// A weather pass that finished: one listing of the server's folder.
    pub fn weather_pass(&self, r: &WeatherReport) {
        let f = Flow::Weather;
        self.files_handled(f.clone(), &r.tally);
        self.listings.with_label_values(&[f.label()]).inc();
        self.passed(f, "weather", r.millis);
    }

    /// A pass of `flow` that failed as a whole (`error` says why, in one line for `/readyz`).
    pub fn pass_failed(&self, flow: Flow, error: &Error) {
        self.errors
            .with_label_values(&[flow.label(), error.kind()])
            .inc();
        self.last_ok.with_label_values(&[flow.label()]).set(0);
        let why = error.to_string().replace(['\n', '\r'], " ");
        self.set_readiness(flow, Readiness::Failing(why));
    }

    /// Reads the state gauges from the store: each configured stream's newest minute and
    /// missing minutes, and the store's size.
    pub fn observe_store(&self, store: &Store, clock: &dyn Clock) -> Result<()> {
        let names = self.streams.iter().map(String::as_str);
        for (name, f) in self
            .streams
            .iter()
            .zip(freshness::of_streams(store, names, clock)?)
        {
            if let Some(at) = f.newest_at {
                self.newest_minute.with_label_values(&[name]).set(at);
            }
            let missing = |window: &str| self.missing.with_label_values(&[name, window]);
            missing("24h").set(gauge(f.missing_24h));
            missing("total").set(gauge(f.missing_total));
        }
        self.observe_log(store)
    }

    /// The store's own gauges: its size, its log's events and how many are shipped.
    pub fn observe_log(&self, store: &Store) -> Result<()> {
        self.observe_store_size(store.path());
        self.log_events.set(gauge(store.event_count()?));
        self.log_shipped.set(gauge(store.shipped()?.to));
        Ok(())
    }

    /// Reads the state gauges of the declared feed `feed`'s streams from the store, labelled
    /// by their `FEED/STREAM` rows (as `gaps` and `status` name them): each one's newest slot
    /// and missing files.
    pub fn observe_feed(&self, store: &Store, feed: &Feed, clock: &dyn Clock) -> Result<()> {
        let fresh = freshness::of_feed(store, feed, clock)?;
        for ((stream, _), f) in feed.streams.pairs().into_iter().zip(fresh) {
            let named = feed.pattern.has_stream().then_some(stream.as_str());
            let key = stream_key(&feed.name, named);
            if let Some(at) = f.newest_at {
                self.newest_minute.with_label_values(&[&key]).set(at);
            }
            let missing = |window: &str| self.missing.with_label_values(&[&key, window]);
            missing("24h").set(gauge(f.missing_24h));
            missing("total").set(gauge(f.missing_total));
        }
        Ok(())
    }

    /// The store file's size, from the file itself.
    pub fn observe_store_size(&self, path: &Path) {
        if let Ok(meta) = std::fs::metadata(path) {
            self.store_bytes.set(gauge(meta.len()));
        }
    }

    /// Every series in Prometheus's text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Encoding into a String fails only on a malformed family, which `new` cannot build.
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::warn!("encoding the metrics: {e}");
        }
        text
    }

    /// `Ok` while the last pass of every flow succeeded; otherwise one line saying which flow
    /// is not ready and why.
    pub fn ready(&self) -> std::result::Result<(), String> {
        let readiness = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        let reasons: Vec<String> = readiness
            .iter()
            .filter_map(|(flow, r)| match r {
                Readiness::Ok => None,
                Readiness::NoPassYet => Some(format!("{}: no pass finished yet", flow.label())),
                Readiness::Failing(why) => Some(format!("{}: {why}", flow.label())),
            })
            .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    /// Why `flow`'s last pass failed, in the words of [`Metrics::ready`]; `None` while it
    /// succeeds or before its first pass.
    pub fn failing(&self, flow: Flow) -> Option<String> {
        let readiness = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        match readiness.get(&flow) {
            Some(Readiness::Failing(why)) => Some(why.clone()),
            _ => None,
        }
    }

    /// Files a pass of `flow` handled, per stream and outcome.
    pub fn files_handled(&self, flow: Flow, tally: &Tally) {
        for (stream, t) in &tally.by_stream {
            let stream = self.stream_label(&flow, stream);
            let counts = [t.copied, t.adopted, t.skipped, t.failed, t.deferred];
            for (outcome, n) in OUTCOMES.into_iter().zip(counts) {
                self.files
                    .with_label_values(&[flow.label(), stream, outcome])
                    .inc_by(n);
            }
            self.bytes
                .with_label_values(&[flow.label(), stream])
                .inc_by(t.bytes);
        }
    }

    /// A configured stream's own name, `weather`, or `_other` for anything else.
    fn stream_label<'a>(&'a self, flow: &Flow, stream: &'a str) -> &'a str {
        let known = |streams: Option<&Vec<String>>| {
            streams.is_some_and(|streams| streams.iter().any(|s| s == stream))
        };
        match flow {
            Flow::Weather => WEATHER_STREAM,
            Flow::Sensors if known(Some(&self.streams)) => stream,
            Flow::Feed(name) if known(self.feeds.get(name)) => stream,
            Flow::Sensors | Flow::Feed(_) => OTHER_STREAM,
        }
    }

    fn passed(&self, flow: Flow, mode: &str, millis: u64) {
        let f = flow.label();
        self.pass_duration
            .with_label_values(&[f, mode])
            .observe(millis as f64 / 1000.0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.with_label_values(&[f]).set(now);
        self.last_ok.with_label_values(&[f]).set(1);
        self.set_readiness(flow, Readiness::Ok);
    }

    fn set_readiness(&self, flow: Flow, r: Readiness) {
        let mut readiness = self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        readiness.insert(flow, r);
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Builds and registers the families; names and labels are constants, so a failure is a bug.
struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn add<M: prometheus::core::Collector + Clone + 'static>(&self, m: M) -> M {
        self.0
            .register(Box::new(m.clone()))
            .expect("metric names are constant and unique");
        m
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        self.add(GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn int_gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
    }

    fn int_gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }

    fn histograms(&self, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec());
        self.add(HistogramVec::new(opts, labels).expect("valid metric"))
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
