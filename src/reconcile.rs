//! The reconcile pass: one full listing of the share, diffed in memory against the index.
//! Names the index already holds as ingested (or skipped for the same reason) cost nothing: no
//! lookup, no event. Everything else is classified and copied or skipped. Catches late,
//! out-of-order and previously failed files that prediction cannot see.
//!
//! The diff is by name: a file changed on the share after it was ingested is found by
//! `ingest audit` (which hashes sources), not here, so a reconcile stays one listing long.

use crate::error::{Error, Result};
use crate::identity::SourceId;
use crate::pass::{Context, Tally};
use crate::plan::{classify, Action};
use crate::predict::perform;
use crate::store::projection::FileState;

/// Runs a reconcile; returns the number of entries listed.
pub fn run(ctx: &Context, tally: &mut Tally) -> Result<u64> {
    let listing = ctx
        .source
        .list()
        .map_err(|source| Error::ShareUnreachable {
            path: ctx.source.describe(),
            source,
        })?;
    let index = ctx.store.states_of(SourceId::Share)?;
    let listed = listing.len() as u64;
    let mut actions = Vec::new();
    for entry in listing {
        let known = index.get(entry.name.as_encoded_bytes());
        // The common case at 246k files: known and ingested, decided without parsing the name.
        if known.is_some_and(FileState::is_ingested) {
            continue;
        }
        let action = classify(&entry.name, entry.kind, &ctx.settings.streams);
        if !known.is_some_and(|state| settled(state, &action)) {
            actions.push(action);
        }
    }
    drop(index);
    perform(ctx, actions, tally)?;
    Ok(listed)
}

/// Whether the index already says all there is to say about this entry.
fn settled(state: &FileState, action: &Action) -> bool {
    match (state, action) {
        (FileState::Skipped(recorded), Action::Skip { reason, .. }) => recorded == reason,
        _ => false,
    }
}
