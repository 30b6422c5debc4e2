//! The contract every [`Bronze`] keeps, as checks run against each implementation: what is
//! absent is `None` or `NotFound` (never an outage), staged bytes are the published bytes, a
//! published batch is all there once `publish` returns `Ok`, older bytes are kept aside under
//! their `kept` name, no link is followed, and a layer that is down says so.
//! [`run`] runs every check on one layer, which must start empty.

use super::lib::bronze::{layout, Bronze, Found, StageOutcome, Staged};
use super::lib::facts::Replaced;
use super::lib::identity::ContentHash;
use super::lib::seam::{Kind, SeamError};
use super::lib::source::{EntryKind, SourceMeta};
use super::Skipped;
use std::io::Read;
use std::path::PathBuf;

/// What only the layer's owner can do, for the checks that need it. A method returns the
/// reason when the implementation cannot express it (an object store has no links).
pub trait BronzeFixture {
    fn bronze(&self) -> &dyn Bronze;
    /// Plants a symbolic link at the Bronze path `rel` (its folders made real) to a file
    /// outside the layer, and returns that file's path.
    fn link_file(&self, rel: &str) -> Result<PathBuf, &'static str>;
    /// Plants a symbolic link at the Bronze folder `dir` to a folder outside the layer.
    fn link_folder(&self, dir: &str) -> Result<(), &'static str>;
    /// Makes the layer unreachable as a whole from now on (the store stopped).
    fn cut_off(&self) -> Result<(), &'static str>;
}

/// Every check, in an order that needs nothing but a fresh, empty layer: the checks that
/// plant links and cut the layer off come last. Returns the checks skipped, with why.
pub fn run(f: &dyn BronzeFixture) -> Skipped {
    let mut skipped = Skipped::default();
    an_empty_layer_walks_nothing_and_is_empty(f.bronze());
    absent_is_none_or_not_found_never_an_outage(f.bronze());
    staged_bytes_are_the_published_bytes(f.bronze());
    a_published_batch_is_all_there_after_ok(f.bronze());
    different_bytes_are_kept_aside_under_the_kept_name(f.bronze());
    a_file_changed_while_read_is_deferred_and_never_visible(f.bronze());
    a_discarded_copy_leaves_nothing(f.bronze());
    remove_temp_refuses_a_data_file(f.bronze());
    reserved_files_replace_read_back_and_remove(f.bronze());
    skipped.run("a_link_is_never_followed", || a_link_is_never_followed(f));
    skipped.run("a_layer_that_is_down_is_unreachable_never_absent", || {
        a_layer_that_is_down_is_unreachable_never_absent(f)
    });
    skipped
}

/// A layer with nothing in it walks nothing and says it is empty, so a first run adopts
/// nothing; one file makes it not empty.
pub fn an_empty_layer_walks_nothing_and_is_empty(b: &dyn Bronze) {
    assert!(b.is_empty().unwrap(), "a fresh layer is empty");
    assert_eq!(walked(b, ""), [], "a fresh layer walks nothing");
    let rel = "e/2023/08/18/10/first.json";
    publish(b, &[stage(b, rel, b"first")]);
    assert!(!b.is_empty().unwrap(), "one file makes the layer not empty");
}

/// A missing file, or a file in a missing folder, is `None` to `stat`, `NotFound` to `hash`,
/// nothing to `walk`: about that file only, never an outage that would end a pass.
pub fn absent_is_none_or_not_found_never_an_outage(b: &dyn Bronze) {
    for rel in ["e/2023/08/18/10/absent.json", "absent/2023/08/18/10/x.json"] {
        assert_eq!(b.stat(rel).unwrap(), None, "{rel}");
        let e = b.hash(rel).expect_err(rel);
        assert_eq!(e.kind(), Kind::NotFound, "{rel}: {e}");
        assert_eq!(walked(b, rel), [], "{rel}");
        match b.stored_hash(rel) {
            Ok(claim) => assert_eq!(claim, None, "{rel}"),
            Err(e) => assert_eq!(e.kind(), Kind::NotFound, "{rel}: {e}"),
        }
    }
    assert_eq!(walked(b, "absent"), [], "a missing folder walks nothing");
}

/// What a copy stages is what it read (hash and bytes), is not visible before `publish`,
/// and is what `publish` puts under the final name: what the log records as copied is there.
pub fn staged_bytes_are_the_published_bytes(b: &dyn Bronze) {
    let (rel, bytes) = ("s/2023/08/18/10/one.json", b"{\"one\": 1}");
    let staged = stage(b, rel, bytes);
    assert_eq!(staged.hash, ContentHash::of(bytes));
    assert_eq!(read_all(b.open_staged(&staged).unwrap()), bytes);
    assert_eq!(b.stat(rel).unwrap(), None, "invisible before publish");
    publish(b, &[staged]);
    assert_published(b, rel, bytes);
}

/// Once `publish` returns `Ok` with every file `Ok`, every file of the batch is there with its
/// bytes (in several folders at once), walking finds exactly them, and no temp is left: the
/// caller commits `Copied` for all of them next.
pub fn a_published_batch_is_all_there_after_ok(b: &dyn Bronze) {
    let files: [(&str, &[u8]); 3] = [
        ("p/2023/08/18/10/a.json", b"a"),
        ("p/2023/08/18/10/b.json", b"bb"),
        ("p/2023/08/18/11/c.json", b"ccc"),
    ];
    let batch: Vec<Staged> = files.iter().map(|(r, x)| stage(b, r, x)).collect();
    publish(b, &batch);
    for (rel, bytes) in files {
        assert_published(b, rel, bytes);
    }
    let want: Vec<Found> = files.iter().map(|(r, _)| file(r)).collect();
    assert_eq!(walked(b, "p"), want, "the batch and nothing else");
}

/// Different bytes at a destination are never overwritten: the older ones move to
/// [`layout::kept_rel`] (what `publish` reports), the new ones take the name; the same bytes
/// again are `AlreadyThere`, nothing staged.
pub fn different_bytes_are_kept_aside_under_the_kept_name(b: &dyn Bronze) {
    let rel = "k/2023/08/18/10/k.json";
    publish(b, &[stage(b, rel, b"old")]);
    let replaced = publish(b, &[stage(b, rel, b"new")]).remove(0);
    let replaced = replaced.expect("older bytes are kept aside");
    let old = ContentHash::of(b"old");
    assert_eq!(replaced.hash, old);
    assert_eq!(replaced.kept_as, layout::kept_rel(rel, old));
    assert_published(b, rel, b"new");
    assert_published(b, &replaced.kept_as, b"old");
    let again = b.stage(
        &mut &b"new"[..],
        meta(b"new"),
        &mut || Ok(Some(meta(b"new"))),
        rel,
    );
    assert!(
        matches!(again, Ok(StageOutcome::AlreadyThere { .. })),
        "{again:?}"
    );
}

/// A source file whose size changed while it was read is deferred, and nothing of it is
/// visible: a half-written file is never published.
pub fn a_file_changed_while_read_is_deferred_and_never_visible(b: &dyn Bronze) {
    let rel = "d/2023/08/18/10/growing.json";
    let grown = SourceMeta {
        size: 99,
        ..meta(b"half")
    };
    let out = b.stage(
        &mut &b"half"[..],
        meta(b"half"),
        &mut || Ok(Some(grown)),
        rel,
    );
    assert!(matches!(out, Ok(StageOutcome::Deferred { .. })), "{out:?}");
    assert_eq!(b.stat(rel).unwrap(), None);
    assert_eq!(walked(b, "d"), [], "no temp left behind");
}

/// A staged copy that is discarded leaves nothing behind, under its name or as a temp.
pub fn a_discarded_copy_leaves_nothing(b: &dyn Bronze) {
    let rel = "x/2023/08/18/10/dropped.json";
    b.discard(stage(b, rel, b"dropped")).unwrap();
    assert_eq!(b.stat(rel).unwrap(), None);
    assert_eq!(walked(b, "x"), []);
}

/// `remove_temp` removes only our temp files: asked for a data file, it refuses and the file
/// stays (an audit's repair can never delete data).
pub fn remove_temp_refuses_a_data_file(b: &dyn Bronze) {
    let rel = "r/2023/08/18/10/data.json";
    publish(b, &[stage(b, rel, b"data")]);
    assert!(b.remove_temp(rel).is_err(), "a data file is not a temp");
    assert_published(b, rel, b"data");
}

/// Ingest's own files (the shipped log, below `_ingest/`): a write replaces what is there
/// whole, reads back the bytes written, a missing one is `None`, removal leaves nothing (and
/// removing nothing is fine); one larger than the reader's limit is refused, unread; they are
/// never data to `inventory`; a path outside `_ingest/` or with a `..` part is refused
/// without writing anything.
pub fn reserved_files_replace_read_back_and_remove(b: &dyn Bronze) {
    let rel = "_ingest/log/0000000000000001/manifest.json";
    let get = |rel: &str| b.get_reserved(rel, 1 << 20);
    assert_eq!(get(rel).unwrap(), None, "absent is None");
    b.put_reserved(rel, b"first, longer than the second")
        .unwrap();
    b.put_reserved(rel, b"second").unwrap();
    assert_eq!(get(rel).unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(walked(b, "_ingest"), [file(rel)], "one file, no temp left");
    let big = b.get_reserved(rel, 5).unwrap_err();
    assert_eq!(big.io().kind(), std::io::ErrorKind::InvalidData, "{big}");
    let streams = super::lib::config::StreamMap::parse(&["A=a".into()]).unwrap();
    let mut data = Vec::new();
    super::lib::bronze::inventory(b, "", &streams, &mut |e| data.push(e.rel().to_owned())).unwrap();
    assert!(!data.iter().any(|r| r.starts_with("_ingest")), "{data:?}");
    for outside in [
        "a/2023/08/18/10/x.json",
        "_ingest/../a/x",
        "_ingestx/y",
        "_ingest/",
    ] {
        assert!(b.put_reserved(outside, b"no").is_err(), "{outside}");
    }
    assert_eq!(b.stat("a/2023/08/18/10/x.json").unwrap(), None);
    b.remove_reserved(rel).unwrap();
    b.remove_reserved(rel).unwrap();
    assert_eq!(get(rel).unwrap(), None);
}

/// No link below the root is followed: a link at a file's name or on the way to it is
/// `Link` to `stat` and `hash`, walked as a link and never into; staging through a linked
/// folder is refused; staging at a linked name replaces the link (never writing its target).
pub fn a_link_is_never_followed(f: &dyn BronzeFixture) -> Result<(), &'static str> {
    let b = f.bronze();
    let (rel, dir) = ("l/2023/08/18/10/link.json", "l/2023/08/18/11");
    let target = f.link_file(rel)?;
    f.link_folder(dir)?;
    let target_bytes = std::fs::read(&target).unwrap();
    let behind = format!("{dir}/behind.json");
    for rel in [rel, behind.as_str()] {
        assert_eq!(b.stat(rel).unwrap_err().kind(), Kind::Link, "{rel}");
        assert_eq!(b.hash(rel).unwrap_err().kind(), Kind::Link, "{rel}");
    }
    let links = [linked(rel), linked(dir)];
    assert_eq!(
        walked(b, "l"),
        links,
        "links are reported, never walked into"
    );
    let through = b.stage(
        &mut &b"x"[..],
        meta(b"x"),
        &mut || Ok(Some(meta(b"x"))),
        &behind,
    );
    assert_eq!(through.unwrap_err().kind(), Kind::Link);
    publish(b, &[stage(b, rel, b"ours")]);
    assert_published(b, rel, b"ours");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        target_bytes,
        "target untouched"
    );
    // Ingest's own files are never written or read through a linked folder either.
    f.link_folder("_ingest/elsewhere")?;
    let own = "_ingest/elsewhere/manifest.json";
    assert_eq!(b.put_reserved(own, b"x").unwrap_err().kind(), Kind::Link);
    assert_eq!(b.get_reserved(own, 64).unwrap_err().kind(), Kind::Link);
    Ok(())
}

/// A layer that is down is `Unreachable` to every call: never `None` (which would make a
/// copy think the file is missing), never one file's error; `publish` is `Err`, so the
/// caller records nothing.
pub fn a_layer_that_is_down_is_unreachable_never_absent(
    f: &dyn BronzeFixture,
) -> Result<(), &'static str> {
    let b = f.bronze();
    let rel = "u/2023/08/18/10/u.json";
    let staged = stage(b, rel, b"staged before the outage");
    if let Err(why) = f.cut_off() {
        b.discard(staged).unwrap();
        return Err(why);
    }
    let down = |what: &str, e: Option<SeamError>| {
        let e = e.unwrap_or_else(|| panic!("{what} succeeded on a layer that is down"));
        assert_eq!(e.kind(), Kind::Unreachable, "{what}: {e}");
    };
    down("stat", b.stat("s/2023/08/18/10/one.json").err());
    down("hash", b.hash("s/2023/08/18/10/one.json").err());
    down("walk", b.walk("", &mut |_| {}).err());
    down("is_empty", b.is_empty().err());
    let other = "u/2023/08/18/11/v.json";
    let v = meta(b"v");
    down(
        "stage",
        b.stage(&mut &b"v"[..], v, &mut || Ok(Some(v)), other).err(),
    );
    down("publish", b.publish(&[staged]).err());
    Ok(())
}

/// Metadata of a source file holding `bytes`, unchanged while read.
fn meta(bytes: &[u8]) -> SourceMeta {
    SourceMeta {
        kind: EntryKind::File,
        size: bytes.len() as u64,
        mtime_ns: super::MTIME_S as i64 * 1_000_000_000,
    }
}

/// Stages `bytes` at `rel`, which must come out staged.
fn stage(b: &dyn Bronze, rel: &str, bytes: &[u8]) -> Staged {
    let m = meta(bytes);
    match b.stage(&mut &bytes[..], m, &mut || Ok(Some(m)), rel) {
        Ok(StageOutcome::Staged(s)) => s,
        other => panic!("{rel} not staged: {other:?}"),
    }
}

/// Publishes `batch`, every file of which must be published; what each replaced.
fn publish(b: &dyn Bronze, batch: &[Staged]) -> Vec<Option<Replaced>> {
    let results = b.publish(batch).expect("the batch's outcome is known");
    assert_eq!(results.len(), batch.len(), "one result per staged file");
    results
        .into_iter()
        .zip(batch)
        .map(|(r, s)| r.unwrap_or_else(|e| panic!("{} not published: {e}", s.rel)))
        .collect()
}

/// `rel` holds exactly `bytes`: by size, by the layer's hash, and by its own claim if any.
fn assert_published(b: &dyn Bronze, rel: &str, bytes: &[u8]) {
    let there = b
        .stat(rel)
        .unwrap()
        .unwrap_or_else(|| panic!("{rel} missing"));
    assert_eq!(there.size, bytes.len() as u64, "{rel}");
    assert_eq!(b.hash(rel).unwrap(), ContentHash::of(bytes), "{rel}");
    if let Some((claim, m)) = b.stored_hash(rel).unwrap() {
        assert_eq!(
            (claim, m.size),
            (ContentHash::of(bytes), there.size),
            "{rel}"
        );
    }
}

/// What `walk` visits below `under`, sorted.
fn walked(b: &dyn Bronze, under: &str) -> Vec<Found> {
    let mut found = Vec::new();
    b.walk(under, &mut |f| found.push(f)).unwrap();
    found.sort_by(|x, y| x.rel.cmp(&y.rel));
    found
}

fn file(rel: &str) -> Found {
    Found {
        rel: rel.to_owned(),
        link: false,
    }
}

fn linked(rel: &str) -> Found {
    Found {
        rel: rel.to_owned(),
        link: true,
    }
}

fn read_all(mut reader: Box<dyn Read + Send>) -> Vec<u8> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    bytes
}
