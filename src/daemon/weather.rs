//! The weather flow as a daemon task: a pass at start, then one every interval, each on a
//! blocking thread so a slow or unreachable server never holds up the sensor flow. On
//! shutdown the pass in flight finishes its batch, records it, and the task returns.

use super::shutdown::Shutdown;
use crate::bronze::{Bronze, OutageLatch};
use crate::clock::Clock;
use crate::error::Result;
use crate::metrics::{Flow, Metrics};
use crate::shipping::heartbeat::Beater;
use crate::source::sftp::SftpSettings;
use crate::store::damage;
use crate::weather::{self, Retry, WeatherContext, WeatherReport};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinError;

/// How long a weather pass waits for the store while a sensor pass of this daemon holds it.
const STORE_WAIT: Duration = Duration::from_secs(600);

/// Everything the weather task runs with.
pub struct WeatherLoop {
    pub sftp: SftpSettings,
    pub bronze: Arc<dyn Bronze>,
    pub state: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub min_age: chrono::Duration,
    pub batch_size: usize,
    pub retry: Retry,
    pub interval: Duration,
    /// What every pass is reported to (and the endpoint serves).
    pub metrics: Arc<Metrics>,
    stop: AtomicBool,
    beater: Beater,
}

impl WeatherLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sftp: SftpSettings,
        bronze: Arc<dyn Bronze>,
        state: PathBuf,
        clock: Arc<dyn Clock>,
        min_age: chrono::Duration,
        batch_size: usize,
        retry: Retry,
        interval: Duration,
    ) -> Self {
        WeatherLoop {
            sftp,
            bronze,
            state,
            clock,
            min_age,
            batch_size,
            retry,
            interval,
            metrics: Arc::new(Metrics::new(&[Flow::Weather], &[])),
            stop: AtomicBool::new(false),
            beater: Beater::new("weather", interval),
        }
    }

    /// Reports to `metrics` (shared with the other flows and the endpoint).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs passes until `shutdown`; a pass in flight then finishes its batch first.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let shutdown = shutdown.wait();
        tokio::pin!(shutdown);
        loop {
            let this = Arc::clone(&self);
            let mut pass = tokio::task::spawn_blocking(move || this.pass());
            let stopping = tokio::select! {
                r = &mut pass => {
                    super::report::weather_pass(&self.metrics, &self.outcome(r));
                    false
                }
                _ = &mut shutdown => {
                    tracing::info!("weather: shutting down, finishing the batch in flight");
                    self.stop.store(true, Ordering::Relaxed);
                    super::report::weather_pass(&self.metrics, &self.outcome(pass.await));
                    true
                }
            };
            self.metrics.observe_store_size(&self.state);
            if stopping {
                return;
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// What a pass's task returned; a panic is a bug (or damage), reported like any failure.
    fn outcome(
        &self,
        r: std::result::Result<Result<WeatherReport>, JoinError>,
    ) -> Result<WeatherReport> {
        r.unwrap_or_else(|e| Err(super::unfinished(&self.state, "the weather pass", e)))
    }

    /// One pass with its retries; a damaged store is a logged failure, not a dead task.
    fn pass(&self) -> Result<WeatherReport> {
        // Bronze found unreachable once is not asked again by this pass or its retries.
        let bronze = OutageLatch::new(Arc::clone(&self.bronze));
        let ctx = WeatherContext {
            sftp: &self.sftp,
            bronze: &bronze,
            state: &self.state,
            store_wait: STORE_WAIT,
            clock: &*self.clock,
            min_age: self.min_age,
            batch_size: self.batch_size,
            stop: Some(&self.stop),
        };
        let report = damage::guard(&self.state, || weather::run_with_retries(&ctx, self.retry));
        crate::shipping::ship_store(&self.state, STORE_WAIT, &bronze);
        self.beater.tick(&self.state, &bronze);
        report
    }
}
