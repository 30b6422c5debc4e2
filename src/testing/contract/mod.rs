//! One contract suite per seam trait, run against every implementation and wrapper (as
//! `object_store` runs its `integration.rs` against every backend): [`bronze`] for `Bronze`,
//! [`source`] for `Source`. A check states what callers rely on and fails when it does not
//! hold; a check an implementation cannot express is reported skipped with its reason.
//!
//! Written once, compiled twice: by the unit tests (`src/testing`, with the in-memory and
//! fault-injecting doubles) and by the integration tests (`tests/main.rs`, against a real
//! Garage, smbd and sshd). Each includer names the library `lib` (`use crate as lib;` or
//! `use ::ingest as lib;`), so only its public API is used here.

pub mod bronze;
pub mod source;

use super::lib;

/// The checks an implementation could not express, each with why, in the order met.
#[derive(Debug, Default)]
pub struct Skipped(Vec<(&'static str, &'static str)>);

impl Skipped {
    /// Runs `check`, noting it skipped (and saying so on stderr) when it returns a reason.
    fn run(&mut self, name: &'static str, check: impl FnOnce() -> Result<(), &'static str>) {
        if let Err(why) = check() {
            eprintln!("contract: {name} skipped: {why}");
            self.0.push((name, why));
        }
    }

    /// The names of the skipped checks, for a runner to compare with the skips it expects.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

/// One whole-second time (2023-08-18 10:00:00 UTC): every source keeps it exactly (sFTP v3
/// carries whole seconds only), so a listing's mtime can be compared for equality.
pub const MTIME_S: u64 = 1_692_352_800;

/// [`MTIME_S`] as a `SystemTime`, for fixtures that set a file's mtime.
pub fn mtime() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(MTIME_S)
}
