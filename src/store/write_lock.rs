//! One Bronze writer per store at a time: an OS file lock beside the store
//! (`STATE.write.lock`), held while a process stages, publishes and records a batch, or
//! settles the `publishing` journal. redb's own lock covers only the moments the store is
//! open, and commands hold it only between steps, so without this two processes (`replay`
//! and `audit --repair`, or either beside the daemon) once staged the same file under the
//! same temp name at once, each removing the other's staging, and settled each other's
//! in-flight journal: the log claimed copies that were not in Bronze (issue 25, item 2).
//!
//! Lock order: this lock first, then the store. A holder of the store never waits for this
//! lock (it could wait for a process that waits for the store), so a pass that holds the
//! store for its whole length takes this lock before opening it. The lock is re-entrant per
//! thread: a pass that holds it may call code that takes it again.

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

thread_local! {
    /// The write locks this thread holds, by lock file, with how many guards share each.
    static HELD: RefCell<HashMap<PathBuf, (File, usize)>> = RefCell::new(HashMap::new());
}

/// Holds the store's write lock until dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub struct WriteLock {
    path: PathBuf,
}

impl WriteLock {
    /// Takes the write lock of the store at `state`, waiting while another process (or
    /// another thread of this one) holds it; says so once when it has to wait.
    pub fn acquire(state: &Path) -> Result<WriteLock> {
        let path = lock_path(state);
        let reentered = HELD.with(|held| {
            held.borrow_mut()
                .get_mut(&path)
                .map(|(_, count)| *count += 1)
                .is_some()
        });
        if !reentered {
            let file = lock_file(&path)?;
            HELD.with(|held| held.borrow_mut().insert(path.clone(), (file, 1)));
        }
        Ok(WriteLock { path })
    }

    /// Whether this thread holds the write lock of the store at `state`.
    pub fn held(state: &Path) -> bool {
        let path = lock_path(state);
        HELD.with(|held| held.borrow().contains_key(&path))
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some((_, count)) = held.get_mut(&self.path) {
                *count -= 1;
                if *count == 0 {
                    // Closing the file releases the OS lock.
                    held.remove(&self.path);
                }
            }
        });
    }
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".write.lock");
    PathBuf::from(name)
}

/// Opens the lock file and locks it, waiting if another holder has it.
fn lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => {
            return Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
    tracing::info!(
        lock = %path.display(),
        "another ingest process is writing to Bronze through this store; waiting for it"
    );
    file.lock()
        .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a fresh handle (as another process would open it) finds the lock taken.
    fn taken_elsewhere(state: &Path) -> bool {
        let file = File::open(lock_path(state)).unwrap();
        matches!(file.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// The lock is the OS's (another handle finds it taken) for as long as any guard of the
    /// holding thread lives, the holder takes it again without waiting for itself, and a
    /// writer waiting in another thread gets it once it is released.
    #[test]
    fn the_holder_reenters_and_others_wait_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("ingest.redb");
        let outer = WriteLock::acquire(&state).unwrap();
        let inner = WriteLock::acquire(&state).unwrap();
        assert!(WriteLock::held(&state) && taken_elsewhere(&state));
        drop(inner);
        assert!(taken_elsewhere(&state), "still held by the outer guard");
        let waiter = {
            let state = state.clone();
            std::thread::spawn(move || WriteLock::acquire(&state).map(|_| ()).is_ok())
        };
        drop(outer);
        assert!(!WriteLock::held(&state));
        assert!(waiter.join().unwrap(), "the waiting writer gets the lock");
        assert!(!taken_elsewhere(&state), "and releases it");
    }
}
