//! The object-store Bronze under faults: [`FaultyObjectStore`] wraps `object_store`'s in-memory
//! store and fails its calls as a [`FaultPlan`] says — a put that fails (nothing stored), a put
//! that lands but whose answer is lost (`Disconnect`: a timeout after the server stored it), a
//! failed lookup, read or listing, a slow call. [`Layer`] lets the model test run the same
//! script against a folder or a bucket. Test-only.

use super::fault::{FaultPlan, FaultyBronze, Op};
use crate::bronze::layout::is_temp_name;
use crate::bronze::{Bronze, LocalBronze, ObjectBronze};
use crate::seam::{Kind, SeamError};
use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt};
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An in-memory bucket whose calls fail as the plan says, and which, like Garage, ignores
/// conditional creates.
#[derive(Debug)]
pub struct FaultyObjectStore {
    pub inner: Arc<InMemory>,
    pub plan: Arc<FaultPlan>,
}

impl std::fmt::Display for FaultyObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyObjectStore({})", self.inner)
    }
}

impl FaultyObjectStore {
    /// The plan's verdict on the next `op`, as the object store's own (transport) error.
    fn before(&self, op: Op) -> object_store::Result<()> {
        self.plan
            .before(op)
            .map(drop)
            .map_err(|e| transport(Box::new(e)))
    }
}

/// A failure of the connection rather than an answer about the object.
fn transport(source: Box<dyn std::error::Error + Send + Sync>) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source,
    }
}

#[async_trait]
impl ObjectStore for FaultyObjectStore {
    /// `Disconnect` stores the object and then fails, as a timeout after the server stored it
    /// does; any other fault fails before anything is stored.
    async fn put_opts(
        &self,
        location: &Key,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        // Like Garage: a conditional create is not honoured, every put overwrites. The
        // layer's own check must keep older bytes, not the server.
        let opts = PutOptions {
            mode: object_store::PutMode::Overwrite,
            ..opts
        };
        match self.plan.before(Op::Put).map_err(SeamError::from) {
            Err(e) if e.kind() == Kind::Lost => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(transport(
                    "the answer to an upload was lost (a timeout)".into(),
                ))
            }
            Err(e) => Err(transport(Box::new(e))),
            Ok(_) => self.inner.put_opts(location, payload, opts).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Key,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.before(Op::Put)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Key,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.before(if options.head { Op::Head } else { Op::Get })?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match self.before(Op::ListKeys) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
        self.before(Op::ListKeys)?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Key,
        to: &Key,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.before(Op::Put)?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// The Bronze the model test runs against: a folder, or an in-memory bucket behind a faulty
/// object store (both behind the writer-level [`FaultyBronze`]).
pub enum Layer {
    Folder(FaultyBronze<LocalBronze>),
    Bucket {
        bronze: Box<FaultyBronze<ObjectBronze>>,
        objects: Arc<InMemory>,
    },
}

impl Layer {
    pub fn folder(root: PathBuf, plan: &Arc<FaultPlan>) -> Layer {
        Layer::Folder(FaultyBronze {
            inner: LocalBronze::new(root),
            plan: Arc::clone(plan),
        })
    }

    pub fn bucket(plan: &Arc<FaultPlan>) -> Layer {
        let objects = Arc::new(InMemory::new());
        let store = FaultyObjectStore {
            inner: Arc::clone(&objects),
            plan: Arc::clone(plan),
        };
        let url = "s3://model/bronze".to_owned();
        let inner = ObjectBronze::new(Arc::new(store), "bronze", url).unwrap();
        Layer::Bucket {
            bronze: Box::new(FaultyBronze {
                inner,
                plan: Arc::clone(plan),
            }),
            objects,
        }
    }

    pub fn as_dyn(&self) -> &dyn Bronze {
        match self {
            Layer::Folder(b) => b,
            Layer::Bucket { bronze, .. } => bronze.as_ref(),
        }
    }

    /// Bronze's final files (relative path → bytes), and how many temp files are there. Keys
    /// are paths, compared by component, so the log's `/`-separated paths find them on
    /// Windows too (where the separator on disk is `\`).
    pub fn files(&self) -> (BTreeMap<PathBuf, Vec<u8>>, usize) {
        let mut files = BTreeMap::new();
        let mut temps = 0;
        let mut add = |rel: PathBuf, bytes: &dyn Fn() -> Vec<u8>| {
            if is_temp_name(&rel.file_name().unwrap().to_string_lossy()) {
                temps += 1;
            } else {
                files.insert(rel, bytes());
            }
        };
        match self {
            Layer::Folder(b) => {
                let root = b.inner.root();
                for path in super::files_under(root) {
                    let rel = path.strip_prefix(root).unwrap().to_owned();
                    add(rel, &|| std::fs::read(&path).unwrap());
                }
            }
            Layer::Bucket { objects, .. } => {
                let metas: Vec<ObjectMeta> = futures::executor::block_on(
                    objects
                        .list(Some(&Key::from("bronze")))
                        .map(Result::unwrap)
                        .collect(),
                );
                for meta in metas {
                    let rel = Path::new(&meta.location.as_ref()["bronze/".len()..]).to_owned();
                    let get = || {
                        futures::executor::block_on(async {
                            objects.get(&meta.location).await?.bytes().await
                        })
                        .unwrap()
                        .to_vec()
                    };
                    add(rel, &get);
                }
            }
        }
        (files, temps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bronze::{StageOutcome, Staged};
    use crate::source::{EntryKind, SourceMeta};

    fn stage(bronze: &dyn Bronze, rel: &str, bytes: &[u8]) -> StageOutcome {
        let meta = SourceMeta {
            kind: EntryKind::File,
            size: bytes.len() as u64,
            mtime_ns: 1,
        };
        bronze
            .stage(&mut &bytes[..], meta, &mut || Ok(Some(meta)), rel)
            .unwrap()
    }

    fn rels(hour: u32) -> Vec<String> {
        (0..60)
            .map(|m| format!("a/2023/08/18/{hour:02}/18.08.2023 {hour:02}{m:02}_A_received.json"))
            .collect()
    }

    /// Staged bytes in memory stay within the budget however many large files a batch holds:
    /// 24 files of 4 MiB (96 MiB) are staged with at most 64 MiB in memory (the rest spooled
    /// to temp files), all 24 are uploaded whole, and nothing is held after the publish.
    #[test]
    fn staged_bytes_in_memory_stay_within_the_budget() {
        let plan = FaultPlan::new();
        let objects = Arc::new(InMemory::new());
        let store = FaultyObjectStore {
            inner: Arc::clone(&objects),
            plan,
        };
        let bronze = ObjectBronze::new(Arc::new(store), "b", "s3://m/b".into()).unwrap();
        let body = |i: usize| vec![b'a' + (i % 26) as u8; 4 << 20];
        let rels: Vec<String> = (0..24)
            .map(|i| format!("a/2023/08/18/10/f{i}.json"))
            .collect();
        let mut staged = Vec::new();
        for (i, rel) in rels.iter().enumerate() {
            match stage(&bronze, rel, &body(i)) {
                StageOutcome::Staged(s) => staged.push(s),
                other => panic!("{other:?}"),
            }
            let held = bronze.staged_in_memory();
            assert!(
                held <= crate::bronze::object::MEMORY_BUDGET,
                "{held} bytes held"
            );
        }
        assert!(bronze.publish(&staged).unwrap().iter().all(Result::is_ok));
        assert_eq!(bronze.staged_in_memory(), 0);
        for (i, rel) in rels.iter().enumerate() {
            let key = Key::from(format!("b/{rel}"));
            let got = futures::executor::block_on(async { objects.get(&key).await?.bytes().await });
            assert!(got.unwrap() == body(i), "{rel}");
        }
    }

    /// Staging asks the bucket once per folder, not once per file: 120 new files in two hour
    /// folders cost two listings, no lookup or download, and 120 uploads. After the publish
    /// the folders are listed afresh, and a file already there is downloaded and hashed
    /// (never trusted by name) and found identical, so nothing is uploaded again.
    #[test]
    fn staging_lists_each_folder_once_and_uploads_each_file_once() {
        let plan = FaultPlan::new();
        let layer = Layer::bucket(&plan);
        let bronze = layer.as_dyn();
        let all: Vec<String> = rels(10).into_iter().chain(rels(11)).collect();
        let staged: Vec<Staged> = all
            .iter()
            .map(|rel| match stage(bronze, rel, rel.as_bytes()) {
                StageOutcome::Staged(s) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        let published = bronze.publish(&staged).unwrap();
        assert!(published.iter().all(Result::is_ok));
        let counts = [Op::ListKeys, Op::Head, Op::Get, Op::Put].map(|op| plan.calls(op));
        assert_eq!(
            counts,
            [2, 0, 0, 120],
            "listings, lookups, downloads, uploads"
        );
        assert_eq!(layer.files().0.len(), 120);

        let again = stage(bronze, &all[0], all[0].as_bytes());
        assert!(
            matches!(again, StageOutcome::AlreadyThere { .. }),
            "{again:?}"
        );
        let counts = [Op::ListKeys, Op::Get, Op::Put].map(|op| plan.calls(op));
        assert_eq!(counts, [3, 1, 120]);
    }
}
