//! Discovery: which files a pass copies. Two ways to find them — [`predict`] looks up the
//! names the next minutes must have, and with [`sweep`] a few that the last day missed (a
//! handful of lookups, no listing); [`reconcile`] lists the share and diffs the listing with
//! the index (nightly, and when prediction cannot follow) — and one per-file decision,
//! [`plan`], that turns a name into an action as a value.

pub mod plan;
pub mod predict;
pub mod reconcile;
pub mod slots;
pub mod sweep;
