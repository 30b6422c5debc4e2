//! How the daemon stops: one signal every flow sees (mini-redis's `shutdown.rs`). What ends
//! the process ([`StopOn`]: a console signal or a Windows service control) is turned into one
//! broadcast; each flow takes a [`Shutdown`] and, when it fires, starts no new work, finishes
//! and records the batch in flight, and returns.

use std::sync::Arc;
use tokio::sync::watch;

/// What stops the daemon: the console's signals, or the Windows Service Control Manager.
#[derive(Debug, Clone)]
pub enum StopOn {
    /// SIGINT/SIGTERM on Unix; on Windows Ctrl-C, Ctrl-Break, closing the console window,
    /// logoff and system shutdown.
    Console,
    /// A service stop or shutdown control, delivered through this notification (a service has
    /// no console; it must not stop when some user logs off).
    #[cfg_attr(not(windows), allow(dead_code))]
    Service(Arc<tokio::sync::Notify>),
}

/// A flow's view of the shutdown: completes once the daemon is stopping.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Completes when the shutdown is signalled (at once if it already was).
    pub async fn wait(mut self) {
        // An error means the sender is gone: the daemon is ending either way.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// The sending side: [`Trigger::fire`] tells every [`Shutdown`] at once.
pub struct Trigger(watch::Sender<bool>);

impl Trigger {
    pub fn new() -> Trigger {
        Trigger(watch::channel(false).0)
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }

    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger::new()
    }
}

/// Completes when the daemon should stop: a console signal, or a service stop.
pub async fn stop_signal(stop_on: StopOn) {
    match stop_on {
        StopOn::Console => console_signal().await,
        StopOn::Service(stop) => stop.notified().await,
    }
}

/// Completes on SIGINT or SIGTERM; on Windows on any console control event.
async fn console_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(windows)]
    {
        // Windows lets a handler run at most a few seconds after a close, logoff or shutdown
        // event before it ends the process, and tokio's handler returns at once: the daemon
        // then stops where it is, which the Bronze writer is built to survive (temp files and
        // unrecorded renames are found and settled by the next run).
        use tokio::signal::windows;
        let mut brk = windows::ctrl_break().ok();
        let mut close = windows::ctrl_close().ok();
        let mut logoff = windows::ctrl_logoff().ok();
        let mut shutdown = windows::ctrl_shutdown().ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            Some(()) = async { brk.as_mut()?.recv().await } => {},
            Some(()) = async { close.as_mut()?.recv().await } => {},
            Some(()) = async { logoff.as_mut()?.recv().await } => {},
            Some(()) = async { shutdown.as_mut()?.recv().await } => {},
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
