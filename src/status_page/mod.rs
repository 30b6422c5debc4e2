//! The status page (issue 28): freshness, completeness and an hour-by-hour heatmap per
//! stream, the last passes and problems, as one server-rendered HTML document. The daemon
//! serves it on its metrics address (`/`, `/day/STREAM/YYYY-MM-DD`); `ingest report --html`
//! writes the same page to a file.
//!
//! - [`model`]: the page's data, read from the store like `gaps` (presence rows, the log's tail);
//! - [`html`]: the document, every name escaped, no script, no external asset;
//! - [`Board`]: the daemon's latest [`Page`], replaced after each pass: a request renders it
//!   from memory and never opens the store, so it cannot hold up a pass (nor a pass a page).

pub mod html;
pub mod model;

pub use html::{Links, View};
pub use model::{LogTally, Options, Page};

use crate::clock::Clock;
use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// The newest page the daemon built; shared by the sensor flow (writer) and the endpoint.
pub struct Board {
    page: Mutex<Option<Arc<Page>>>,
    /// The daemon's silence threshold (`--silence-minutes`): older streams show as silent.
    pub silent_after: Duration,
    /// The daemon's clock: ages on the page are the passes' ages, never the system clock's.
    clock: Arc<dyn Clock>,
}

impl Board {
    /// An empty board for a daemon whose silence threshold is `silent_after` and whose
    /// passes run on `clock`.
    pub fn new(silent_after: Duration, clock: Arc<dyn Clock>) -> Board {
        Board {
            page: Mutex::default(),
            silent_after,
            clock,
        }
    }

    /// Now, as the daemon's passes see it: what a page's ages are measured from.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now_utc()
    }

    /// Replaces the page.
    pub fn publish(&self, page: Page) {
        *self.lock() = Some(Arc::new(page));
    }

    /// The newest page, if one was built yet.
    pub fn latest(&self) -> Option<Arc<Page>> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Page>>> {
        self.page.lock().unwrap_or_else(|e| e.into_inner())
    }
}
