//! The reconcile pass: one full listing of the share, sorted and merged with the index (which
//! redb keeps in the same byte order), so no map of every indexed name is built.
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
use crate::source::Listed;
use crate::store::projection::FileState;

/// Runs a reconcile; returns the number of entries listed.
pub fn run(ctx: &Context, tally: &mut Tally) -> Result<u64> {
    let mut listing = ctx
        .source
        .list()
        .map_err(|source| Error::ShareUnreachable {
            path: ctx.source.describe(),
            source,
        })?;
    let listed = listing.len() as u64;
    // Only each record's state is decoded, and nothing is allocated per indexed file.
    listing.sort_unstable_by(|a, b| a.name.as_encoded_bytes().cmp(b.name.as_encoded_bytes()));
    let mut entries = listing.into_iter().peekable();
    let mut actions = Vec::new();
    let mut consider = |entry: Listed, known: Option<FileState>| {
        // The common case at 246k files: known and ingested, decided without parsing the name.
        if known.as_ref().is_some_and(FileState::is_ingested) {
            return;
        }
        let action = classify(&entry.name, entry.kind, &ctx.settings.streams);
        if !known.is_some_and(|state| settled(&state, &action)) {
            actions.push(action);
        }
    };
    ctx.store
        .for_each_state_of(SourceId::Share, |name, state| {
            while let Some(entry) = entries.next_if(|e| e.name.as_encoded_bytes() < name) {
                consider(entry, None);
            }
            if let Some(entry) = entries.next_if(|e| e.name.as_encoded_bytes() == name) {
                consider(entry, Some(state));
            }
        })?;
    entries.for_each(|entry| consider(entry, None));
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
