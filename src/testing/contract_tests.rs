//! The [`contract`](super::contract) suites run from the unit tests, against what needs no
//! server: Bronze in a folder and in an in-memory bucket, each also behind the fault
//! wrappers; the share as a folder, also behind the fault wrapper. These run under Wine too
//! (tools/windows-check). The runs against a real Garage, smbd and sshd are in
//! `tests/contract_servers.rs`. Each run names the checks it expects skipped, so a check
//! that stops running shows.

use super::contract::bronze::{self, BronzeFixture};
use super::contract::mtime;
use super::contract::source::{self, SourceFixture};
use super::fault::{Fault, FaultPlan, FaultyBronze, FaultySource, Op, EIO};
use super::fault_object::Layer;
use crate::bronze::{Bronze, LocalBronze, ObjectBronze};
use crate::source::{DirSource, Source};
use object_store::memory::InMemory;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LINK: &str = "a_link_is_never_followed";
const DOWN: &str = "a_layer_that_is_down_is_unreachable_never_absent";
const SOURCE_LINK: &str = "a_link_is_reported_never_followed";
const DROPPED: &str = "a_dropped_session_is_lost";

/// Why a folder's checks of an outage are skipped.
const A_FOLDER_HAS_NO_SERVER: &str = "a folder has no server to stop (Bronze refusing writes \
    as a whole is tests/bronze_outage.rs, on a read-only tmpfs)";
const A_FOLDER_HAS_NO_SESSION: &str = "a folder has no session to drop (a lost mount leaves \
    an empty or missing folder, which check and is_empty answer)";
const A_BUCKET_HAS_NO_LINKS: &str = "an object store has no links: every key is an object";
#[cfg(not(unix))]
const NO_LINKS_HERE: &str = "a symbolic link needs a privilege on Windows that a test run \
    lacks (tests/bronze_links.rs is Unix-only too)";

/// Plants a symbolic link at `at` to `target`, making `at`'s folders.
fn symlink(target: &Path, at: &Path) -> Result<(), &'static str> {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, at).unwrap();
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = target;
        Err(NO_LINKS_HERE)
    }
}

/// A Bronze layer on disk at `dir/bronze`, with files outside it (in `dir`) for links.
struct OnDisk<B> {
    bronze: B,
    dir: tempfile::TempDir,
}

impl<B> OnDisk<B> {
    fn path_of(&self, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(self.dir.path().join("bronze"), |p, part| p.join(part))
    }
}

impl<B: Bronze> BronzeFixture for OnDisk<B> {
    fn bronze(&self) -> &dyn Bronze {
        &self.bronze
    }

    fn link_file(&self, rel: &str) -> Result<PathBuf, &'static str> {
        let target = self.dir.path().join("outside.json");
        std::fs::write(&target, b"not ours").unwrap();
        symlink(&target, &self.path_of(rel))?;
        Ok(target)
    }

    /// The folder linked to holds the file the check looks for behind the link, so a
    /// layer that followed the link would find it.
    fn link_folder(&self, dir: &str) -> Result<(), &'static str> {
        let target = self.dir.path().join("outside");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("behind.json"), b"not ours").unwrap();
        symlink(&target, &self.path_of(dir))
    }

    fn cut_off(&self) -> Result<(), &'static str> {
        Err(A_FOLDER_HAS_NO_SERVER)
    }
}

/// A Bronze layer in an in-memory bucket; with a plan, one that can be cut off.
struct InBucket {
    bronze: Box<dyn Bronze>,
    plan: Option<Arc<FaultPlan>>,
}

impl BronzeFixture for InBucket {
    fn bronze(&self) -> &dyn Bronze {
        self.bronze.as_ref()
    }

    fn link_file(&self, _: &str) -> Result<PathBuf, &'static str> {
        Err(A_BUCKET_HAS_NO_LINKS)
    }

    fn link_folder(&self, _: &str) -> Result<(), &'static str> {
        Err(A_BUCKET_HAS_NO_LINKS)
    }

    /// Every request the layer makes fails from now on, as a transport error would.
    fn cut_off(&self) -> Result<(), &'static str> {
        let plan = self.plan.as_ref().ok_or(
            "the plain in-memory bucket never goes down (the faulty bucket's run checks it)",
        )?;
        for op in [Op::Head, Op::Get, Op::ListKeys, Op::Put] {
            (0..64).for_each(|nth| plan.add(op, nth, Fault::Errno(EIO)));
        }
        Ok(())
    }
}

fn local() -> OnDisk<LocalBronze> {
    let dir = tempfile::tempdir().unwrap();
    let bronze = LocalBronze::new(dir.path().join("bronze"));
    OnDisk { bronze, dir }
}

/// The skips a run over a folder expects: links where the OS lets a test make them.
fn folder_skips() -> Vec<&'static str> {
    let links = if cfg!(unix) { None } else { Some(LINK) };
    links.into_iter().chain([DOWN]).collect()
}

#[test]
fn bronze_contract_local() {
    assert_eq!(bronze::run(&local()).names(), folder_skips());
}

#[test]
fn bronze_contract_local_behind_the_fault_wrapper() {
    let OnDisk { bronze, dir } = local();
    let plan = FaultPlan::new();
    let wrapped = OnDisk {
        bronze: FaultyBronze {
            inner: bronze,
            plan,
        },
        dir,
    };
    assert_eq!(bronze::run(&wrapped).names(), folder_skips());
}

#[test]
fn bronze_contract_object_in_memory() {
    let store = Arc::new(InMemory::new());
    let bronze = ObjectBronze::new(store, "bronze", "s3://contract/bronze".into()).unwrap();
    let bucket = InBucket {
        bronze: Box::new(bronze),
        plan: None,
    };
    assert_eq!(bronze::run(&bucket).names(), [LINK, DOWN]);
}

/// The faulty bucket ignores conditional creates, as Garage does, and can be cut off.
#[test]
fn bronze_contract_object_behind_the_fault_wrappers() {
    let plan = FaultPlan::new();
    let Layer::Bucket { bronze, .. } = Layer::bucket(&plan) else {
        unreachable!("a bucket layer")
    };
    let bucket = InBucket {
        bronze,
        plan: Some(plan),
    };
    assert_eq!(bronze::run(&bucket).names(), [LINK]);
}

/// The share as a folder at `dir/share` (`source` reads it), with a file outside for links.
struct Folder<S> {
    source: S,
    dir: tempfile::TempDir,
    /// Drops the "session" of a source behind the fault wrapper.
    plan: Option<Arc<FaultPlan>>,
}

impl<S> Folder<S> {
    fn root(&self) -> PathBuf {
        self.dir.path().join("share")
    }
}

impl<S: Source> SourceFixture for Folder<S> {
    fn source(&self) -> &dyn Source {
        &self.source
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        let path = self.root().join(name);
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(mtime()).unwrap();
    }

    fn delete(&self, name: &str) {
        std::fs::remove_file(self.root().join(name)).unwrap();
    }

    fn link(&self, name: &str) -> Result<(), &'static str> {
        let target = self.dir.path().join("outside.json");
        std::fs::write(&target, b"not ours").unwrap();
        symlink(&target, &self.root().join(name))
    }

    /// Behind the fault wrapper: the next lookup, listing and open fail as on a dropped
    /// connection.
    fn drop_session(&mut self) -> Result<(), &'static str> {
        let plan = self.plan.as_ref().ok_or(A_FOLDER_HAS_NO_SESSION)?;
        for op in [Op::Stat, Op::List, Op::Open] {
            plan.add(op, 0, Fault::Disconnect);
        }
        Ok(())
    }
}

fn folder() -> Folder<DirSource> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("share")).unwrap();
    let source = DirSource::new(dir.path().join("share"));
    Folder {
        source,
        dir,
        plan: None,
    }
}

#[test]
fn source_contract_folder() {
    let links = if cfg!(unix) { None } else { Some(SOURCE_LINK) };
    let want: Vec<_> = links.into_iter().chain([DROPPED]).collect();
    assert_eq!(source::run(&mut folder()).names(), want);
}

#[test]
fn source_contract_folder_behind_the_fault_wrapper() {
    let Folder { source, dir, .. } = folder();
    let plan = FaultPlan::new();
    let mut wrapped = Folder {
        source: FaultySource {
            inner: source,
            plan: Arc::clone(&plan),
        },
        dir,
        plan: Some(plan),
    };
    let links = if cfg!(unix) {
        vec![]
    } else {
        vec![SOURCE_LINK]
    };
    assert_eq!(source::run(&mut wrapped).names(), links);
}
