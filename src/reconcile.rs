//! The reconcile pass: one full listing of the share, sorted and merged with the index (which
//! redb keeps in the same byte order), so no map of every indexed name is built.
//! Names the index already holds as ingested (or skipped for the same reason) cost nothing: no
//! lookup, no event. Everything else is classified and copied or skipped. Catches late,
//! out-of-order and previously failed files that prediction cannot see.
//!
//! The diff is by name, and by size and mtime where the listing carries them: an ingested
//! file whose size or mtime changed on the share is copied again as a new version (the
//! previous Bronze bytes are kept aside as `NAME.kept-HASH`). A change that keeps both is
//! found by `ingest audit`, which hashes sources (`--accept-changed` ingests it).

use crate::error::{Error, Result};
use crate::identity::SourceId;
use crate::pass::{Context, Tally};
use crate::plan::{classify, source_changed, Action};
use crate::predict::perform;
use crate::source::Listed;
use crate::store::event::Facts;
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
    let mut consider = |entry: Listed, known: Option<(FileState, Option<Facts>)>| {
        // The common case at 246k files: known, ingested and unchanged, decided without
        // parsing the name.
        if let Some((state, facts)) = &known {
            if state.is_ingested() && !source_changed(state, facts.as_ref(), entry.meta.as_ref()) {
                return;
            }
        }
        let known = known.map(|(state, _)| state);
        let action = classify(&entry.name, entry.kind, &ctx.settings.streams);
        if !known.is_some_and(|state| settled(&state, &action)) {
            actions.push(action);
        }
    };
    ctx.store
        .for_each_state_of(SourceId::Share, |name, state, facts| {
            while let Some(entry) = entries.next_if(|e| e.name.as_encoded_bytes() < name) {
                consider(entry, None);
            }
            if let Some(entry) = entries.next_if(|e| e.name.as_encoded_bytes() == name) {
                consider(entry, Some((state, facts)));
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
