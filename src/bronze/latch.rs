//! One pass's view of a Bronze layer that stops asking once the layer did not answer:
//! [`OutageLatch`] wraps any [`Bronze`] for one pass (or one command), and the first call that
//! finds the layer as a whole unreachable (`Kind::Unreachable`: a stalled or unreachable object
//! store) makes every later call of that pass fail at once with the same cause. Without it a
//! pass met a stalled store once per step it took in turn: the emptiness check, then the first
//! copy's listing, each waiting out a request timeout (240 s at the default 120 s, where one
//! timeout is what an outage may cost). The native SMB client does the same for its share
//! (`source::smb::session`'s `lost`). The next pass wraps the layer anew and asks again.

use super::{Bronze, EntryMeta, Found, StageOutcome, Staged};
use crate::identity::ContentHash;
use crate::seam::{Kind, Result, SeamError};
use crate::source::SourceMeta;
use crate::store::event::Replaced;
use std::io::Read;
use std::sync::{Arc, OnceLock};

/// A Bronze layer for one pass: after the first `Unreachable`, every call that would reach
/// the layer fails at once with that cause. Calls on staged copies kept in memory
/// (`open_staged`, `discard`) and naming (`locate`, `describe`) never reach it and go on.
pub struct OutageLatch {
    inner: Arc<dyn Bronze>,
    /// Why the layer did not answer, once a call found it so.
    lost: OnceLock<String>,
}

impl OutageLatch {
    /// `inner`, not yet found unreachable.
    pub fn new(inner: Arc<dyn Bronze>) -> Self {
        OutageLatch {
            inner,
            lost: OnceLock::new(),
        }
    }

    /// Why the layer was found unreachable in this pass, if it was.
    pub fn lost(&self) -> Option<&str> {
        self.lost.get().map(String::as_str)
    }

    /// Runs `call` on the layer unless it was found unreachable already; notes it if `call`
    /// finds it so.
    fn reach<T>(&self, call: impl FnOnce(&dyn Bronze) -> Result<T>) -> Result<T> {
        if let Some(why) = self.lost.get() {
            return Err(SeamError::msg(Kind::Unreachable, why.clone()));
        }
        let result = call(&*self.inner);
        if let Err(e) = &result {
            if e.kind() == Kind::Unreachable {
                let _ = self.lost.set(e.to_string());
            }
        }
        result
    }
}

impl Bronze for OutageLatch {
    fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
        rel: &str,
    ) -> Result<StageOutcome> {
        self.reach(|b| b.stage(reader, before, recheck, rel))
    }

    fn open_staged(&self, staged: &Staged) -> Result<Box<dyn Read + Send>> {
        self.inner.open_staged(staged)
    }

    fn discard(&self, staged: Staged) -> Result<()> {
        self.inner.discard(staged)
    }

    fn publish(&self, batch: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>> {
        self.reach(|b| b.publish(batch))
    }

    fn stat(&self, rel: &str) -> Result<Option<EntryMeta>> {
        self.reach(|b| b.stat(rel))
    }

    fn hash(&self, rel: &str) -> Result<ContentHash> {
        self.reach(|b| b.hash(rel))
    }

    fn stored_hash(&self, rel: &str) -> Result<Option<(ContentHash, EntryMeta)>> {
        self.reach(|b| b.stored_hash(rel))
    }

    fn walk(&self, under: &str, visit: &mut dyn FnMut(Found)) -> Result<()> {
        self.reach(|b| b.walk(under, visit))
    }

    fn is_empty(&self) -> Result<bool> {
        self.reach(|b| b.is_empty())
    }

    fn remove_temp(&self, rel: &str) -> Result<()> {
        self.reach(|b| b.remove_temp(rel))
    }

    fn put_reserved(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        self.reach(|b| b.put_reserved(rel, bytes))
    }

    fn get_reserved(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        self.reach(|b| b.get_reserved(rel, limit))
    }

    fn remove_reserved(&self, rel: &str) -> Result<()> {
        self.reach(|b| b.remove_reserved(rel))
    }

    fn locate(&self, rel: &str) -> String {
        self.inner.locate(rel)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A layer that counts the calls reaching it and answers `stat` of `missing` with nothing
    /// and every other call as a store that does not answer.
    #[derive(Default)]
    struct Stalled {
        calls: AtomicUsize,
    }

    impl Stalled {
        fn answer<T>(&self, ok: Option<T>) -> Result<T> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            ok.ok_or_else(|| SeamError::msg(Kind::Unreachable, "no answer within 2 s"))
        }
    }

    impl Bronze for Stalled {
        fn stage(
            &self,
            _: &mut dyn Read,
            _: SourceMeta,
            _: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
            _: &str,
        ) -> Result<StageOutcome> {
            self.answer(None)
        }
        fn open_staged(&self, _: &Staged) -> Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::empty()))
        }
        fn discard(&self, _: Staged) -> Result<()> {
            Ok(())
        }
        fn publish(&self, _: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>> {
            self.answer(None)
        }
        fn stat(&self, rel: &str) -> Result<Option<EntryMeta>> {
            if rel == "missing" {
                self.calls.fetch_add(1, Ordering::SeqCst);
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such key").into());
            }
            self.answer(None)
        }
        fn hash(&self, _: &str) -> Result<ContentHash> {
            self.answer(None)
        }
        fn walk(&self, _: &str, _: &mut dyn FnMut(Found)) -> Result<()> {
            self.answer(None)
        }
        fn is_empty(&self) -> Result<bool> {
            self.answer(None)
        }
        fn remove_temp(&self, _: &str) -> Result<()> {
            self.answer(None)
        }
        fn put_reserved(&self, _: &str, _: &[u8]) -> Result<()> {
            self.answer(None)
        }
        fn get_reserved(&self, _: &str, _: u64) -> Result<Option<Vec<u8>>> {
            self.answer(None)
        }
        fn remove_reserved(&self, _: &str) -> Result<()> {
            self.answer(None)
        }
        fn locate(&self, rel: &str) -> String {
            format!("s3://stalled/{rel}")
        }
        fn describe(&self) -> String {
            "s3://stalled".into()
        }
    }

    /// The first call the layer does not answer is the only one that reaches it in the pass:
    /// every later call fails at once with the same cause, while an answer about one object
    /// (`NotFound`) latches nothing. The next pass's latch asks the layer again.
    #[test]
    fn the_first_unanswered_call_ends_every_later_call_of_the_pass() {
        let stalled = Arc::new(Stalled::default());
        let pass = OutageLatch::new(Arc::clone(&stalled) as Arc<dyn Bronze>);
        let calls = || stalled.calls.load(Ordering::SeqCst);
        assert!(pass
            .stat("missing")
            .is_err_and(|e| e.kind() == Kind::NotFound));
        assert_eq!((calls(), pass.lost()), (1, None));
        let first = pass.is_empty().unwrap_err();
        assert_eq!(first.kind(), Kind::Unreachable);
        assert_eq!(pass.lost(), Some("no answer within 2 s"));
        for later in [
            pass.stat("a/b").map(drop),
            pass.hash("a/b").map(drop),
            pass.walk("", &mut |_| {}),
            pass.publish(&[]).map(drop),
            pass.remove_temp("a/.b.tmp"),
        ] {
            let e = later.unwrap_err();
            assert_eq!(e.kind(), Kind::Unreachable, "{e}");
            assert_eq!(e.to_string(), first.to_string());
        }
        assert_eq!(
            calls(),
            2,
            "only the first unanswered call reached the layer"
        );
        assert_eq!(pass.describe(), "s3://stalled");
        let next = OutageLatch::new(Arc::clone(&stalled) as Arc<dyn Bronze>);
        assert!(next.is_empty().is_err());
        assert_eq!(calls(), 3, "a new pass asks again");
    }
}
