//! `ingest run` as a service: every configured flow (the sensors of the share, the weather
//! forecasts of the sFTP server) runs as a task of one tokio runtime under one shutdown. The
//! daemon holds the daemon lock, turns the console's signals (or a Windows service stop) into
//! that shutdown, and returns once every flow has finished and recorded its batch in flight.
//!
//! - [`sensors`]: the sensor flow's schedule (prediction every interval, reconcile nightly or
//!   when needed), health and backoff, and the downstream hook;
//! - [`weather`]: the weather flow's schedule;
//! - [`feeds`]: each declared feed's schedule (a pass every interval, predicting or listing);
//! - [`report`]: the one place every flow reports each pass to (the log and the metrics);
//! - [`endpoint`]: `/metrics`, `/healthz`, `/readyz` and the status page (`/`, `/day/…`)
//!   over HTTP (`run --metrics-addr`);
//! - [`shutdown`]: the one stop signal; [`lock`]: one daemon per store;
//! - [`silence`]: one WARN when a stream stops delivering, one INFO when it resumes.

pub mod endpoint;
pub mod feeds;
pub mod lock;
pub mod report;
pub mod sensors;
pub mod shutdown;
pub mod silence;
pub mod weather;

pub use feeds::FeedLoop;
pub use sensors::{DaemonStats, SensorLoop, SensorSchedule};
pub use shutdown::StopOn;
pub use weather::WeatherLoop;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::status_page::Board;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The flows one daemon runs; at least one is configured.
pub struct Flows {
    pub sensors: Option<Arc<SensorLoop>>,
    pub weather: Option<Arc<WeatherLoop>>,
    /// The config file's feeds of other shapes than the seed's (`listing`).
    pub feeds: Vec<Arc<FeedLoop>>,
    /// What the flows report to, served over HTTP when an address is given.
    pub metrics: Arc<Metrics>,
    /// The status page the sensor flow keeps up to date, served as `/`.
    pub board: Arc<Board>,
}

/// Runs every configured flow until `stop_on` fires, then lets each finish its batch in
/// flight and returns. Refuses to start while another daemon holds the store's lock, or when
/// `metrics_addr` cannot be listened on.
pub fn serve(
    state: &Path,
    flows: Flows,
    stop_on: StopOn,
    metrics_addr: Option<SocketAddr>,
) -> Result<()> {
    let _lock = lock::DaemonLock::acquire(state)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    let listener = match metrics_addr {
        Some(addr) => Some(runtime.block_on(endpoint::bind(addr))?),
        None => None,
    };
    let endpoint = listener.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(
        state = %state.display(),
        sensors = flows.sensors.is_some(),
        weather = flows.weather.is_some(),
        feeds = flows.feeds.len(),
        metrics = endpoint.map(|a| format!("http://{a}/metrics")),
        "daemon started"
    );
    runtime.block_on(async {
        let trigger = shutdown::Trigger::new();
        if let Some(listener) = listener {
            tokio::spawn(endpoint::serve(
                listener,
                flows.metrics,
                flows.board,
                trigger.subscribe(),
            ));
        }
        let sensors = flows.sensors.map(|s| {
            let stop = trigger.subscribe();
            tokio::spawn(async move {
                s.run(stop.wait()).await;
            })
        });
        let weather = flows
            .weather
            .map(|w| tokio::spawn(w.run(trigger.subscribe())));
        let feeds: Vec<_> = (flows.feeds.into_iter())
            .map(|f| tokio::spawn(f.run(trigger.subscribe())))
            .collect();
        shutdown::stop_signal(stop_on).await;
        trigger.fire();
        let mut bug = None;
        for task in [sensors, weather].into_iter().flatten().chain(feeds) {
            // A flow that panicked ends the daemon as the bug it is, once the others finished.
            if let Err(e) = task.await {
                bug.get_or_insert(unfinished(state, "a flow of the daemon", e));
            }
        }
        bug.map_or(Ok(()), Err)
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// Why a task of the daemon (`what`, e.g. "the sensor pass") did not return: a panic raised
/// inside the store is damage to the store at `state` (`store::damage`); any other panic, or
/// a task cancelled under it, is a bug in ingest, never a problem of the configuration.
fn unfinished(state: &Path, what: &str, e: tokio::task::JoinError) -> Error {
    if let Some(detail) = crate::store::damage::take_panic() {
        let corrupted = Error::Store(redb::Error::Corrupted(detail));
        return crate::store::damage::classify(state, corrupted);
    }
    match e.try_into_panic() {
        Ok(payload) => Error::panicked(what, &*payload),
        Err(e) => Error::Internal(format!("{what} did not finish: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Flow;

    /// A task that panicked outside the store.
    fn panicked_task(message: &'static str) -> tokio::task::JoinError {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(async { tokio::spawn(async move { panic!("{message}") }).await })
            .unwrap_err()
    }

    /// Issue 26: a pass that panicked outside the store is a bug in ingest, named with the
    /// panic's message, counted under `kind="internal"` (and exit 101 if it ends a command),
    /// never a configuration error (which the daemon used to report it as).
    #[test]
    fn a_panicked_pass_is_an_internal_error_not_a_configuration_error() {
        let e = unfinished(
            Path::new("s.redb"),
            "the sensor pass",
            panicked_task("index out of bounds"),
        );
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
        let said = e.to_string();
        assert!(said.contains("a bug in ingest"), "{said}");
        assert!(
            said.contains("the sensor pass panicked: index out of bounds"),
            "{said}"
        );
        assert_eq!(e.exit_code(), 101);
        let metrics = Metrics::new(&[Flow::Sensors], &[]);
        let internal = r#"ingest_errors_total{flow="sensors",kind="internal"} "#;
        let count = |m: &Metrics| {
            m.render()
                .lines()
                .find_map(|l| l.strip_prefix(internal).map(str::to_owned))
        };
        assert_eq!(count(&metrics).as_deref(), Some("0"), "exists before");
        metrics.pass_failed(Flow::Sensors, &e);
        assert_eq!(count(&metrics).as_deref(), Some("1"));
    }
}
