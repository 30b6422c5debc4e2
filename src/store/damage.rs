//! A store damaged outside redb (overwritten pages, a failing disk) ends every command with
//! exit 2 naming the file and the documented recovery, never with a panic.
//!
//! redb reports most damage as `Corrupted` errors, which [`classify`] turns into
//! [`Error::StoreDamaged`]. But a plain open trusts a cleanly closed file, and a traversal that
//! meets a garbage page can still panic inside redb (its debug assertions in debug builds,
//! slice and arithmetic checks in release ones). Verifying the whole file on every open
//! (`set_check_integrity_on_open`) would read and commit the whole store on each daemon pass,
//! so instead [`guard`] catches a panic raised in redb's own code at the command boundary and
//! reports it like a `Corrupted` error. Panics anywhere else are bugs and unwind as before.

use crate::error::Error;
use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, PanicHookInfo};
use std::path::Path;
use std::sync::{Mutex, Once, PoisonError};

/// What the last panic inside redb said, taken by [`guard`] or [`take_panic`].
static REDB_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Runs `f` (a command's store work); redb's `Corrupted` errors and panics raised inside redb
/// become [`Error::StoreDamaged`] for the store at `path`.
pub fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    install_hook();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| classify(path, e)),
        Err(payload) => match take_panic() {
            Some(detail) => Err(damaged(path, detail)),
            None => resume_unwind(payload),
        },
    }
}

/// The message of the last panic raised inside redb, if one happened since the last call
/// (for a pass that ran, and panicked, on another thread).
pub fn take_panic() -> Option<String> {
    REDB_PANIC
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// `e`, or [`Error::StoreDamaged`] when it says the store's content is unreadable.
pub fn classify(path: &Path, e: Error) -> Error {
    let detail = match &e {
        Error::Store(redb::Error::Corrupted(d)) => d.clone(),
        Error::StoreOpen {
            source: redb::DatabaseError::Storage(redb::StorageError::Corrupted(d)),
            ..
        } => d.clone(),
        Error::Codec { .. } => e.to_string(),
        _ => return e,
    };
    damaged(path, detail)
}

fn damaged(path: &Path, detail: String) -> Error {
    Error::StoreDamaged {
        path: path.to_owned(),
        detail,
    }
}

/// Installs, once, a panic hook that records panics raised in redb's source instead of
/// printing them (the command reports them as a damaged store), and hands every other panic
/// to the hook that was there before.
pub fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match redb_panic(info) {
            Some(detail) => {
                *REDB_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(detail);
            }
            None => previous(info),
        }));
    });
}

/// The panic's message, when it was raised in redb's source.
fn redb_panic(info: &PanicHookInfo) -> Option<String> {
    let at = info.location()?;
    let in_redb = at
        .file()
        .split(['/', '\\'])
        .any(|part| part.starts_with("redb-"));
    in_redb.then(|| message(info.payload()).to_owned())
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic inside redb")
}
