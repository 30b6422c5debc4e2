//! "Only one daemon per store": an OS file lock held for the daemon's lifetime, separate from
//! redb's lock (which the daemon releases between passes so `status`, `log` and `audit` can
//! run).

use crate::error::{Error, Result};

/// "Only one daemon per store": an OS file lock held for the daemon's lifetime, separate from
/// redb's lock (which the daemon releases between passes).
pub struct DaemonLock {
    _file: std::fs::File,
}

impl DaemonLock {
    /// Takes the lock beside `state`, or fails naming who holds it.
    pub fn acquire(state: &std::path::Path) -> Result<Self> {
        let mut name = state.as_os_str().to_owned();
        name.push(".daemon.lock");
        let path = std::path::PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::DaemonRunning { lock: path }),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
    }
}
