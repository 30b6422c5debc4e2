//! `ingest run` as a service: every configured flow (the sensors of the share, the weather
//! forecasts of the sFTP server) runs as a task of one tokio runtime under one shutdown. The
//! daemon holds the daemon lock, turns the console's signals (or a Windows service stop) into
//! that shutdown, and returns once every flow has finished and recorded its batch in flight.
//!
//! - [`sensors`]: the sensor flow's schedule (prediction every interval, reconcile nightly or
//!   when needed), health and backoff, and the downstream hook;
//! - [`weather`]: the weather flow's schedule;
//! - [`report`]: the one place every flow reports each pass to;
//! - [`shutdown`]: the one stop signal; [`lock`]: one daemon per store;
//! - [`silence`]: one WARN when a stream stops delivering, one INFO when it resumes.

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
use std::path::Path;
use std::sync::Arc;

/// The flows one daemon runs; at least one is configured.
pub struct Flows {
    pub sensors: Option<Arc<SensorLoop>>,
    pub weather: Option<Arc<WeatherLoop>>,
}

/// Runs every configured flow until `stop_on` fires, then lets each finish its batch in
/// flight and returns. Refuses to start while another daemon holds the store's lock.
pub fn serve(state: &Path, flows: Flows, stop_on: StopOn) -> Result<()> {
    let _lock = lock::DaemonLock::acquire(state)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    tracing::info!(
        state = %state.display(),
        sensors = flows.sensors.is_some(),
        weather = flows.weather.is_some(),
        "daemon started"
    );
    runtime.block_on(async {
        let trigger = shutdown::Trigger::new();
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
