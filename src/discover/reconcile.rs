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
//!
//! A listing is evidence only if it looks like the whole share: one that is empty while the
//! index holds files of the share, or smaller than half the last completed reconcile's, is an
//! outage (an unmounted share leaves an empty mount point), and nothing is concluded from it.
//! A reconcile is complete only when its whole listing was merged and every copy it planned
//! was recorded; only then does the pass record it (`scan-completed`).

use crate::context::Context;
use crate::discover::plan::{classify, source_changed, Action};
use crate::error::{Error, Result};
use crate::identity::SourceId;
use crate::source::{Listed, Source};
use crate::store::event::{PassMode, SourceVersion};
use crate::store::projection::FileState;

/// What a reconcile found: the actions for the pass to perform (`copy::perform`).
#[derive(Debug)]
pub struct Reconciled {
    /// Entries in the listing.
    pub listed: u64,
    /// What the listing holds that the index does not say all about.
    pub actions: Vec<Action>,
}

/// Lists the share and diffs the listing with the index. Reads the store, never writes it.
pub fn discover(ctx: &Context) -> Result<Reconciled> {
    let mut listing = ctx
        .source
        .list()
        .map_err(|source| Error::unreachable(ctx.source.describe(), source))?;
    let listed = listing.len() as u64;
    // Only each record's state is decoded, and nothing is allocated per indexed file.
    listing.sort_unstable_by(|a, b| a.name.as_encoded_bytes().cmp(b.name.as_encoded_bytes()));
    let mut entries = listing.into_iter().peekable();
    let mut actions = Vec::new();
    let mut indexed = 0u64;
    let horizon = ctx.horizon();
    let mut consider = |entry: Listed, known: Option<(FileState, Option<SourceVersion>)>| {
        // The common case at 246k files: known, ingested and unchanged, decided without
        // parsing the name.
        if let Some((state, facts)) = &known {
            if state.is_ingested() && !source_changed(state, facts.as_ref(), entry.meta.as_ref()) {
                return;
            }
        }
        let known = known.map(|(state, _)| state);
        let action = classify(&entry.name, entry.kind, &ctx.settings.streams, horizon);
        if !known.is_some_and(|state| settled(&state, &action)) {
            actions.push(action);
        }
    };
    ctx.store.with(|store| {
        store.for_each_state_of(SourceId::Share, |name, state, facts| {
            indexed += 1;
            while let Some(entry) = entries.next_if(|e| e.name.as_encoded_bytes() < name) {
                consider(entry, None);
            }
            if let Some(entry) = entries.next_if(|e| e.name.as_encoded_bytes() == name) {
                consider(entry, Some((state, facts)));
            }
        })
    })?;
    entries.for_each(|entry| consider(entry, None));
    check_listing(ctx, listed, indexed)?;
    Ok(Reconciled { listed, actions })
}

/// Refuses a listing that looks like a lost share rather than the share: empty while the index
/// holds `indexed` of its files, or fewer than half the entries of the last completed
/// reconcile (shares only grow: one file per minute per stream). Files removed on purpose are
/// accepted with `Settings::accept_shrunk_share`, once; that reconcile is the new reference.
fn check_listing(ctx: &Context, listed: u64, indexed: u64) -> Result<()> {
    if ctx.settings.accept_shrunk_share {
        return Ok(());
    }
    let before = ctx
        .store
        .with(|s| s.last_summary(PassMode::Reconcile))?
        .map(|s| s.listed);
    let lists = match listed {
        0 => "it lists no entries".to_owned(),
        n => format!("it lists {n} entries"),
    };
    let what = match before {
        Some(before) if listed.saturating_mul(2) < before => {
            format!("{lists}, the last completed reconcile listed {before}")
        }
        None if listed == 0 && indexed > 0 => {
            format!("{lists}, while the index holds {indexed} of its files")
        }
        _ => return Ok(()),
    };
    let why = format!(
        "{what}: taken for an unmounted or partly mounted share, nothing concluded from it \
         (if files were removed from the share on purpose, run `ingest run --scan \
         --accept-shrunk-share` once)"
    );
    Err(Error::ListingRefused {
        path: ctx.source.describe(),
        why,
    })
}

/// Whether `e` is a refused listing (the share answered, but far smaller than the index
/// knows it), as opposed to a share that could not be listed at all.
pub fn is_refused_listing(e: &Error) -> bool {
    matches!(e, Error::ListingRefused { .. })
}

/// Whether the index already says all there is to say about this entry.
fn settled(state: &FileState, action: &Action) -> bool {
    match (state, action) {
        (FileState::Skipped(recorded), Action::Skip { reason, .. }) => recorded == reason,
        _ => false,
    }
}
