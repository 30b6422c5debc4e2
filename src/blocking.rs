//! A tokio runtime owned by synchronous code that calls an async client (the object store's,
//! the SMB client). The passes are threads, so each such client gets a small runtime of its
//! own and every call blocks on it, with or without a time limit.
//!
//! The owner may be dropped inside the daemon's own runtime, where dropping another runtime the
//! usual way (waiting for its tasks) panics: this one is shut down without waiting.

use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::runtime::{EnterGuard, Runtime};

pub use tokio::time::error::Elapsed;

/// A multi-threaded tokio runtime to block on from synchronous code.
pub struct BlockingRuntime {
    /// Always `Some` until `drop` takes it to shut it down.
    runtime: Option<Runtime>,
}

impl BlockingRuntime {
    /// A runtime with `workers` threads named `name` (as seen in a thread dump), with I/O and
    /// timers enabled.
    pub fn new(name: &str, workers: usize) -> io::Result<BlockingRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(BlockingRuntime {
            runtime: Some(runtime),
        })
    }

    /// Runs `f` to completion on this runtime, blocking the calling thread.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime().block_on(f)
    }

    /// [`block_on`](Self::block_on) for at most `limit`: past it, `f` is dropped unfinished.
    pub fn block_on_within<F: Future>(&self, limit: Duration, f: F) -> Result<F::Output, Elapsed> {
        self.runtime()
            .block_on(async { tokio::time::timeout(limit, f).await })
    }

    /// Enters the runtime's context, for dropping a client whose drop spawns or aborts tasks.
    pub fn enter(&self) -> EnterGuard<'_> {
        self.runtime().enter()
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime is taken only in drop")
    }
}

impl Drop for BlockingRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
