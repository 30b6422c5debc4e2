//! A store damaged outside redb (overwritten pages, a failing disk) ends every command with
//! exit 2 naming the file and the documented recovery, never with a panic.
//!
//! redb reports most damage as `Corrupted` errors, which [`classify`] turns into
//! [`Error::StoreDamaged`]. But a plain open trusts a cleanly closed file, and a traversal that
//! meets a garbage page can still panic (in redb's debug assertions, its slice and arithmetic
//! checks, or in std code it calls, such as an allocation of a garbage length). Verifying the
//! whole file on every open (`set_check_integrity_on_open`) would read and commit the whole
//! store on each daemon pass, so instead every piece of work on the file runs [`Inside`] the
//! store (the store's transactions carry the mark), and a panic raised on a thread while it is
//! inside is damage: the hook records it instead of printing it, and [`guard`] reports it at
//! the command boundary. Which code panicked (redb, std, our decoding) does not matter, so
//! neither do the paths the crates were built from. Panics anywhere else are bugs and unwind
//! as before.

use crate::error::{panic_message, Error};
use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, PanicHookInfo};
use std::path::Path;
use std::sync::{Mutex, Once, PoisonError};

/// What the last panic inside the store said, taken by [`guard`] or [`take_panic`].
static STORE_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

thread_local! {
    /// How many [`Inside`] marks this thread holds (a store call may nest in another).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the current thread as working on the store file for as long as it lives: a panic
/// the thread raises meanwhile means the file is damaged. Not `Send`: the mark is the
/// thread's, and must be dropped where it was taken.
pub struct Inside {
    _this_thread: PhantomData<*const ()>,
}

impl Inside {
    pub fn enter() -> Inside {
        install_hook();
        DEPTH.with(|d| d.set(d.get() + 1));
        Inside {
            _this_thread: PhantomData,
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// `f`, run [`Inside`] the store (for work on the file outside a transaction: opening it).
pub fn inside<T>(f: impl FnOnce() -> T) -> T {
    let _inside = Inside::enter();
    f()
}

fn is_inside() -> bool {
    // `try_with`: a panic while the thread's locals are torn down is not ours to judge.
    DEPTH.try_with(|d| d.get() > 0).unwrap_or(false)
}

/// Runs `f` (a command's store work); redb's `Corrupted` errors and panics raised inside the
/// store become [`Error::StoreDamaged`] for the store at `path`.
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

/// The message of the last panic raised inside the store, if one happened since the last call
/// (for a pass that ran, and panicked, on another thread).
pub fn take_panic() -> Option<String> {
    STORE_PANIC
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// `e`, or [`Error::StoreDamaged`] when it says the store's content is unreadable.
pub fn classify(path: &Path, e: Error) -> Error {
    if let Error::Feed { feed, source } = e {
        // A feed's pass that met a damaged store met the store's damage, not the feed's.
        return match classify(path, *source) {
            damaged @ Error::StoreDamaged { .. } => damaged,
            other => Error::Feed {
                feed,
                source: Box::new(other),
            },
        };
    }
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

/// Installs, once, a panic hook that records panics raised inside the store instead of
/// printing them (the command reports them as a damaged store), and hands every other panic
/// to the hook that was there before.
pub fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if is_inside() {
                *STORE_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(detail(info));
            } else {
                previous(info);
            }
        }));
    });
}

/// The panic's message and where it was raised (which tells a reader whether redb, std or
/// our decoding met the garbage).
fn detail(info: &PanicHookInfo) -> String {
    let message = panic_message(info.payload());
    match info.location() {
        Some(at) => format!("{message}, at {}:{}", at.file(), at.line()),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::parallel_map;

    fn is_damage<T>(r: &Result<T, Error>) -> bool {
        matches!(r, Err(Error::StoreDamaged { .. }))
    }

    /// Whatever code raises it (here an index out of bounds in our own code, on the command's
    /// thread or a worker's), a panic inside the store is damage to the named store; a panic
    /// outside it still unwinds as the bug it is. One test: the recorded panic is per process.
    #[test]
    fn a_panic_is_damage_exactly_when_raised_inside_the_store() {
        let path = Path::new("damaged.redb");
        let garbage = std::hint::black_box(vec![0u8; 4]);
        let on_this_thread = guard(path, || {
            let _inside = Inside::enter();
            Ok(garbage[usize::from(garbage[0]) + 9])
        });
        assert!(is_damage(&on_this_thread), "{on_this_thread:?}");
        let in_workers = guard(path, || {
            Ok(parallel_map(&[1, 2, 3, 4], 4, |i| {
                inside(|| garbage[i * 7])
            }))
        });
        assert!(is_damage(&in_workers), "{in_workers:?}");
        let outside = catch_unwind(|| guard(path, || -> Result<(), Error> { panic!("a bug") }));
        let unwound = outside.expect_err("a bug elsewhere is no damage: it unwinds");
        assert_eq!(
            unwound.downcast_ref::<&str>(),
            Some(&"a bug"),
            "the bug's own panic"
        );
        assert_eq!(take_panic(), None);
    }
}
