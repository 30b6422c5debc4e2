//! `ingest run` as a service: every configured flow (the sensors of the share, the weather
//! forecasts of the sFTP server) runs as a task of one tokio runtime under one shutdown. The
//! daemon holds the daemon lock, turns the console's signals (or a Windows service stop) into
//! that shutdown, and returns once every flow has finished and recorded its batch in flight.
//!
//! - [`sensors`]: the sensor flow's schedule (prediction every interval, reconcile nightly or
//!   when needed), health and backoff, and the downstream hook;
//! - [`weather`]: the weather flow's schedule;
//! - [`report`]: the one place every flow reports each pass to (the log and the metrics);
//! - [`endpoint`]: `/metrics`, `/healthz` and `/readyz` over HTTP (`run --metrics-addr`);
//! - [`shutdown`]: the one stop signal; [`lock`]: one daemon per store;
//! - [`silence`]: one WARN when a stream stops delivering, one INFO when it resumes.

pub mod endpoint;
pub mod lock;
pub mod report;
pub mod sensors;
pub mod shutdown;
pub mod silence;
pub mod weather;

pub use sensors::{DaemonStats, SensorLoop, SensorSchedule};
pub use shutdown::StopOn;
pub use weather::WeatherLoop;

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The flows one daemon runs; at least one is configured.
pub struct Flows {
    pub sensors: Option<Arc<SensorLoop>>,
    pub weather: Option<Arc<WeatherLoop>>,
    /// What the flows report to, served over HTTP when an address is given.
    pub metrics: Arc<Metrics>,
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
        metrics = endpoint.map(|a| format!("http://{a}/metrics")),
        "daemon started"
    );
    runtime.block_on(async {
        let trigger = shutdown::Trigger::new();
        if let Some(listener) = listener {
            tokio::spawn(endpoint::serve(
                listener,
                flows.metrics,
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
        shutdown::stop_signal(stop_on).await;
        trigger.fire();
        for task in [sensors, weather].into_iter().flatten() {
            // A flow that panicked has already said so; the others still finish.
            let _ = task.await;
        }
    });
    tracing::info!("stopped");
    Ok(())
}
