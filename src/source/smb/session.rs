//! The SMB sessions with the share, and the runtime their clients run on. `smb2` is async; the
//! passes are synchronous threads, so the session owns a small tokio runtime (one worker,
//! which also runs the clients' receivers and keepalives between calls) and every call blocks
//! on it.
//!
//! Lookups, whole-file reads, listings and checks share one connection: SMB2 multiplexes
//! requests on a connection (each has its message id and is paid for in credits), so the calls
//! threads make together (a backlog's lookups, the copies' reads) are in flight together over
//! one login, as many as the callers make. Over a link each call is a round trip; in series
//! 1,246 new files cost 20 s at 10 ms. A file too large for one read is streamed on a
//! connection of its own (a download holds its connection between chunks), opened only when
//! every open one is busy.

use super::SmbSettings;
use crate::blocking::BlockingRuntime;
use smb2::client::Connection;
use smb2::{ErrorKind, SmbClient, Tree};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// A connected client and the share's tree.
pub struct Connected {
    pub client: SmbClient,
    pub tree: Tree,
}

/// Connections at most for streamed downloads (files larger than one read), beside the shared
/// one (Samba serves each connection with a process of its own).
const CONNECTIONS: usize = 4;

/// The runtime and the connections on it (each none before its first call and after a loss).
pub struct Session {
    runtime: BlockingRuntime,
    /// The connection every call but a download shares, its requests in flight together.
    shared: Mutex<Option<Connected>>,
    /// Counts the shared connection's connects: a call that failed drops the connection it
    /// used, never one a later call connected since.
    shared_generation: AtomicU64,
    /// Connections for downloads, one download each.
    slots: Vec<Mutex<Option<Connected>>>,
    next: AtomicUsize,
    /// Failures of the share as a whole so far, and the last one's cause: a call that waited
    /// for a connection while the share was lost fails with it at once
    /// ([`Session::lost_while_waiting`]).
    lost: AtomicUsize,
    last_loss: Mutex<String>,
}

/// What went wrong, sorted by what the caller does about it.
#[derive(Debug)]
pub enum Failure {
    /// No such file (or folder above it): an answer, not a failure of the share.
    NotFound,
    /// This file only (permissions, locked by a writer).
    File(String),
    /// Larger than one read: to be streamed instead.
    TooLarge,
    /// Behind a DFS link, which only the client's own calls follow.
    Referred,
    /// The share as a whole: unreachable, dropped, wrong login or share name.
    Share(String),
}

impl Session {
    pub fn new() -> io::Result<Session> {
        Ok(Session {
            runtime: BlockingRuntime::new("ingest-smb", 1)?,
            shared: Mutex::new(None),
            shared_generation: AtomicU64::new(0),
            slots: (0..CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            last_loss: Mutex::new(String::new()),
        })
    }

    /// The first connection no other thread is using, else the next one in turn (waited for).
    fn slot(&self) -> MutexGuard<'_, Option<Connected>> {
        for slot in &self.slots {
            if let Ok(free) = slot.try_lock() {
                return free;
            }
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        self.slots[turn].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` on the connected session, connecting first when there is none. A failure of
    /// the share as a whole drops the session, so the next call connects again.
    pub fn call<T, F>(&self, settings: &SmbSettings, op: F) -> Result<T, Failure>
    where
        F: for<'a> FnOnce(&'a mut Connected) -> BoxFuture<'a, smb2::Result<T>>,
    {
        let runtime = &self.runtime;
        let losses_before = self.lost.load(Ordering::SeqCst);
        let mut conn = self.slot();
        let connected = self.connected(&mut conn, losses_before, settings)?;
        // The client waits for an answer as long as the connection lives: a server that
        // stalls (a hung smbd, a link gone dark) is given one timeout per request.
        let limit = settings.timeout;
        let result = match runtime.block_on_within(limit, op(connected)) {
            Ok(answer) => answer.map_err(failure),
            Err(_) => Err(stalled(settings.timeout)),
        };
        match result {
            Err(Failure::Share(why)) => {
                let _inside = runtime.enter();
                *conn = None;
                Err(self.lose_shared(None, Failure::Share(why)))
            }
            other => other,
        }
    }

    /// Runs `op` on the shared connection beside the calls other threads make on it (`op` gets
    /// a clone of the connection: clones multiplex over it), connecting first when there is
    /// none. A call on a path behind a DFS link is made again as `client_op`, by the client,
    /// which follows the link. A failure of the share as a whole drops the connection.
    pub fn call_shared<T, S, C>(
        &self,
        settings: &SmbSettings,
        op: S,
        client_op: C,
    ) -> Result<T, Failure>
    where
        S: FnOnce(Connection, Tree) -> BoxFuture<'static, smb2::Result<T>>,
        C: for<'a> FnOnce(&'a mut Connected) -> BoxFuture<'a, smb2::Result<T>>,
    {
        let (conn, tree, generation) = self.shared_handle(settings)?;
        let limit = settings.timeout;
        let result = match self.runtime.block_on_within(limit, op(conn, tree)) {
            Ok(Err(e)) if e.kind() == ErrorKind::DfsReferral => Err(Failure::Referred),
            Ok(answer) => answer.map_err(failure),
            Err(_) => Err(stalled(limit)),
        };
        match result {
            Err(Failure::Referred) => self.call(settings, client_op),
            Err(Failure::Share(why)) => {
                Err(self.lose_shared(Some(generation), Failure::Share(why)))
            }
            other => other,
        }
    }

    /// The connection in `slot`, connected now if there is none, unless the share was lost
    /// since `losses_before` (while the caller waited for the slot).
    fn connected<'s>(
        &self,
        slot: &'s mut Option<Connected>,
        losses_before: usize,
        settings: &SmbSettings,
    ) -> Result<&'s mut Connected, Failure> {
        match slot {
            Some(connected) => Ok(connected),
            None if self.lost.load(Ordering::SeqCst) != losses_before => {
                Err(self.lost_while_waiting())
            }
            none => {
                let limit = settings.timeout;
                match self.runtime.block_on_within(limit, connect(settings)) {
                    Ok(Ok(connected)) => Ok(none.insert(connected)),
                    Ok(Err(failure)) => Err(self.note_loss(failure)),
                    Err(_) => Err(self.note_loss(stalled(limit))),
                }
            }
        }
    }

    /// The shared connection (connected now if there is none) and the share's tree on it.
    fn shared_handle(&self, settings: &SmbSettings) -> Result<(Connection, Tree, u64), Failure> {
        let losses_before = self.lost.load(Ordering::SeqCst);
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = shared.is_none();
        let connected = self.connected(&mut shared, losses_before, settings)?;
        if fresh {
            self.shared_generation.fetch_add(1, Ordering::SeqCst);
        }
        let conn = connected
            .client
            .connection_for(&connected.tree)
            .map_err(|e| Failure::Share(e.to_string()))?;
        let generation = self.shared_generation.load(Ordering::SeqCst);
        Ok((conn, connected.tree.clone(), generation))
    }

    /// After a failure of the share as a whole: drops the shared connection (the one the call
    /// used, `generation`, unless another call connected anew since; any, after a download's
    /// failure) and the idle download connections, which most likely died with it (a
    /// restarted server), so the next pass does not meet them one by one, each ending it
    /// again. The loss is noted before the shared connection is free again, so no call waiting
    /// for it connects into the server just lost.
    fn lose_shared(&self, generation: Option<u64>, failure: Failure) -> Failure {
        let _inside = self.runtime.enter();
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if generation.is_none_or(|g| g == self.shared_generation.load(Ordering::SeqCst)) {
            shared.take();
        }
        self.drop_idle_slots();
        self.note_loss(failure)
    }

    /// Drops the download connections no call is using (inside the runtime).
    fn drop_idle_slots(&self) {
        for slot in &self.slots {
            if let Ok(mut idle) = slot.try_lock() {
                idle.take();
            }
        }
    }

    /// The share was lost while a call waited for a connection: it fails with that loss at
    /// once instead of connecting anew (against a stalled server each waiting copy thread
    /// once spent a whole timeout connecting: 120–180 s before a pass ended).
    fn lost_while_waiting(&self) -> Failure {
        let why = self.last_loss.lock().unwrap_or_else(|e| e.into_inner());
        Failure::Share(format!("{why} (lost while this call waited)"))
    }

    /// Remembers a failure of the share as a whole for the calls waiting behind it.
    fn note_loss(&self, failure: Failure) -> Failure {
        if let Failure::Share(why) = &failure {
            *self.last_loss.lock().unwrap_or_else(|e| e.into_inner()) = why.clone();
            self.lost.fetch_add(1, Ordering::SeqCst);
        }
        failure
    }

    /// Blocks on `f` on the session's runtime (for a download's further chunks), at most
    /// `limit`: past it, the share is taken for stalled.
    pub fn block_on_within<F: Future>(&self, limit: Duration, f: F) -> Result<F::Output, Failure> {
        self.runtime
            .block_on_within(limit, f)
            .map_err(|_| self.note_loss(stalled(limit)))
    }
}

impl Drop for Session {
    /// The clients go first, inside the runtime (dropping one aborts its tasks); the runtime
    /// itself is then shut down without waiting when the `runtime` field drops.
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        self.shared
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for slot in &mut self.slots {
            slot.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

/// A request the server did not answer in time.
fn stalled(limit: Duration) -> Failure {
    Failure::Share(format!(
        "no answer within {} s (the server or the link stalled)",
        limit.as_secs_f64()
    ))
}

/// A boxed future borrowing the session, as [`Session::call`] takes it.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

async fn connect(settings: &SmbSettings) -> Result<Connected, Failure> {
    let password = match &settings.password {
        Some(source) => source.read().map_err(Failure::Share)?,
        None => crate::source::secret::Secret::new(""),
    };
    let config = smb2::ClientConfig {
        addr: settings.addr(),
        timeout: settings.timeout,
        username: settings.user.clone(),
        password: password.expose().to_owned(),
        domain: settings.domain.clone(),
        // Reconnecting is ours (next call, with the daemon's backoff), so a lost share is an
        // outage the pass sees, not a request replayed behind its back.
        auto_reconnect: false,
        ..Default::default()
    };
    let mut client = SmbClient::connect(config)
        .await
        .map_err(|e| login_failure(settings, e))?;
    let tree = client
        .connect_share(&settings.share)
        .await
        .map_err(|e| share_failure(settings, e))?;
    Ok(Connected { client, tree })
}

fn login_failure(settings: &SmbSettings, e: smb2::Error) -> Failure {
    let who = if settings.user.is_empty() {
        "as guest".to_owned()
    } else {
        format!("as {}", settings.user)
    };
    match e.kind() {
        ErrorKind::AuthRequired | ErrorKind::GuestSessionRefused | ErrorKind::AccessDenied => {
            Failure::Share(format!(
                "logging in {who} was refused (wrong user or password? SMB_PASSWORD, --smb-password-file): {e}"
            ))
        }
        _ => Failure::Share(format!("connecting to {}: {e}", settings.addr())),
    }
}

fn share_failure(settings: &SmbSettings, e: smb2::Error) -> Failure {
    match e.kind() {
        ErrorKind::NotFound => Failure::Share(format!(
            "the server has no share named {:?}: {e}",
            settings.share
        )),
        _ => Failure::Share(format!("opening the share {:?}: {e}", settings.share)),
    }
}

/// A request's error, sorted: missing, the share's (the connection or session is gone), or
/// this file's problem (locked, denied, delete pending, a name the server refuses, …): a
/// file's problem never ends a pass.
pub fn failure(e: smb2::Error) -> Failure {
    match e.kind() {
        ErrorKind::NotFound => Failure::NotFound,
        ErrorKind::TooLarge => Failure::TooLarge,
        ErrorKind::ConnectionLost
        | ErrorKind::TimedOut
        | ErrorKind::SessionExpired
        | ErrorKind::AuthRequired
        | ErrorKind::SigningRequired
        | ErrorKind::GuestSessionRefused
        | ErrorKind::InvalidData => Failure::Share(e.to_string()),
        _ => Failure::File(e.to_string()),
    }
}
