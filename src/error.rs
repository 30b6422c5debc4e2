//! The library's one error type. Each variant says what failed and where; [`Error::exit_code`]
//! tells the binary what it means: "could not run" (exit 2), or a bug in ingest (exit 101, as
//! an uncaught panic). Per-file failures are never errors here but `Failed` events.

use std::any::Any;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store {path} is locked by another ingest process (redb file lock); try again when it finishes")]
    StoreLocked { path: PathBuf },
    #[error("the store {path} cannot be opened: {source}")]
    StoreOpen {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("the store {path} is damaged ({detail}). To recover (RELIABILITY.md, \"Recovering a damaged store\"): stop the daemon, move the file aside (it keeps the history), run `ingest restore` (the history back from the log shipped into Bronze; `ingest adopt` where none was shipped), then `ingest run --scan`")]
    StoreDamaged { path: PathBuf, detail: String },
    #[error("store error: {0}")]
    Store(#[from] redb::Error),
    #[error("cannot decode {what}: {detail}")]
    Codec { what: &'static str, detail: String },
    /// The share, server or Bronze as a whole (`path` says which, e.g. "the share /mnt/z").
    #[error("{path} is not reachable: {source}")]
    ShareUnreachable {
        path: String,
        source: std::io::Error,
    },
    /// The share answered a listing far smaller than the index knows it: taken for an
    /// unmounted or partly mounted share (`why` says so), nothing concluded from it.
    #[error("{path} is not reachable: {why}")]
    ListingRefused { path: String, why: String },
    /// Bronze as a whole refuses writes (read-only, full, over quota, not ours to write in).
    #[error("Bronze {root} refuses writes: {source}; its files are copied by the first pass after it takes writes again")]
    BronzeRefusesWrites {
        root: String,
        source: std::io::Error,
    },
    #[error("another ingest daemon is running on this store (it holds {lock})")]
    DaemonRunning { lock: PathBuf },
    #[error("configuration: {0}")]
    Config(String),
    /// A declared feed's pass failed (`listing`): its own error, named by the feed.
    #[error("feed `{feed}`: {source}")]
    Feed {
        feed: String,
        #[source]
        source: Box<Error>,
    },
    /// The log shipped into Bronze cannot be read back or continued (`shipping`): a damaged or
    /// missing segment, a gap, or a log in Bronze ahead of this store's.
    #[error("shipped log: {0}")]
    ShippedLog(String),
    /// The weather server's own failure, in its client's words (`source::sftp::SftpError`
    /// converts into it where it is defined, so this vocabulary imports no source).
    #[error("weather: {0}")]
    Sftp(ServerError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A bug in ingest: a panic caught where it cannot be damage to the store, or a state the
    /// code rules out. Never a problem of the configuration or the data.
    #[error("internal error, a bug in ingest (please report it with this message): {0}")]
    Internal(String),
}

impl Error {
    /// A source as a whole (`what`: its description, e.g. "the share /mnt/z") could not be
    /// reached (`why`). Bronze's outages are built by `bronze::outage`, which knows its kinds.
    pub fn unreachable(what: String, why: impl Into<std::io::Error>) -> Self {
        Error::ShareUnreachable {
            path: what,
            source: why.into(),
        }
    }

    /// `e`, said of the declared feed `feed`; its kind and exit code stay its own.
    pub fn in_feed(feed: &str, e: Error) -> Self {
        Error::Feed {
            feed: feed.to_owned(),
            source: Box::new(e),
        }
    }

    /// Every value [`Error::kind`] can return.
    pub const KINDS: [&'static str; 7] = [
        "store_locked",
        "store",
        "unreachable",
        "config",
        "sftp",
        "io",
        "internal",
    ];

    /// What kind of failure this is, in one word: the `kind` label of the daemon's error
    /// counter (a closed set, so the label never grows with messages).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::StoreLocked { .. } | Error::DaemonRunning { .. } => "store_locked",
            Error::StoreOpen { .. }
            | Error::StoreDamaged { .. }
            | Error::Store(_)
            | Error::Codec { .. } => "store",
            Error::ShareUnreachable { .. }
            | Error::ListingRefused { .. }
            | Error::BronzeRefusesWrites { .. } => "unreachable",
            Error::Config(_) => "config",
            Error::Sftp(_) => "sftp",
            // The shipped log is read and written in Bronze: its faults are I/O of a kind.
            Error::Io { .. } | Error::ShippedLog(_) => "io",
            Error::Internal(_) => "internal",
            Error::Feed { source, .. } => source.kind(),
        }
    }

    /// The binary's exit code for a command that ends with this error: 101 for a bug (what
    /// Rust gives an uncaught panic, so a caught one ends the same way), else 2 ("could not
    /// run"). Exit 1 stays "ran, but some files failed", which no error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Internal(_) => 101,
            Error::Feed { source, .. } => source.exit_code(),
            _ => 2,
        }
    }

    /// A panic caught in `what` (e.g. "the sensor pass"), with the panic's own message.
    pub fn panicked(what: &str, payload: &(dyn Any + Send)) -> Self {
        Error::Internal(format!("{what} panicked: {}", panic_message(payload)))
    }

    /// `source`: an OS error, or a `seam::SeamError` (which keeps its words).
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a panic said (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// A remote server's failure as its client described it, with what a flow needs to decide
/// whether to try again: a transient failure is retried with backoff, a stall is not (each
/// attempt would wait out another timeout while the pass holds its lock).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServerError {
    pub message: String,
    pub transient: bool,
    pub stall: bool,
}

/// redb has one error type per operation; all of them convert into `redb::Error`.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::Store(redb::Error::from(e)) }
        }
    )*};
}
from_redb!(
    redb::TableError,
    redb::StorageError,
    redb::TransactionError,
    redb::CommitError
);
