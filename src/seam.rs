//! What goes wrong at the two seams, `Source` (where files come from) and `Bronze` (where
//! copies land): every call on either returns a [`SeamError`] whose
//! [`Kind`] tells the caller what it may conclude. The kind is the contract (a missing file is
//! `NotFound`, never "lost"; a link is `Link`, never followed; a dropped session is `Lost`),
//! so callers match on it instead of downcasting what an `io::Error` carries.
//! The OS or client error that said so travels inside, for messages.

use std::io;

/// What a failed call at a seam means for its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The name (or a folder on the way) is not there. About this one file only.
    NotFound,
    /// A symbolic link or junction where a file or folder was expected; never followed.
    Link,
    /// Bronze as a whole cannot be reached (an object store down or refusing us): nothing
    /// about any file may be concluded from it. Bronze's only: a source says `Lost`.
    Unreachable,
    /// The source as a whole failed (unreachable, a dropped session, a refused login, an
    /// unmounted folder): the pass ends as an outage. A source's only, so a copy that meets
    /// an outage knows whose it is.
    Lost,
    /// Bronze as a whole refuses writes (read-only, full, over quota, a root not ours):
    /// every other file would meet the same refusal.
    Refused,
    /// Anything else: one file's problem (a permission, a read error).
    Other,
}

/// A failed call on a `Source` or `Bronze`: its [`Kind`] and the error that said so.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SeamError {
    kind: Kind,
    error: io::Error,
}

pub type Result<T, E = SeamError> = std::result::Result<T, E>;

impl SeamError {
    pub fn new(kind: Kind, error: io::Error) -> Self {
        SeamError { kind, error }
    }

    /// A failure of `kind` described by `message`.
    pub fn msg(kind: Kind, message: impl Into<String>) -> Self {
        SeamError::new(kind, io::Error::other(message.into()))
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether the layer as a whole is down, lost or refusing: an outage ends the pass
    /// without recording anything about the file that met it.
    pub fn is_outage(&self) -> bool {
        matches!(self.kind, Kind::Unreachable | Kind::Lost | Kind::Refused)
    }

    /// The OS or client error inside, for messages and for its `io::ErrorKind`.
    pub fn io(&self) -> &io::Error {
        &self.error
    }

    pub fn into_io(self) -> io::Error {
        self.error
    }
}

/// An OS error from a plain file operation: `NotFound` when it says so, else one file's
/// problem. Outages are never inferred here; the implementation that knows says so. An
/// `io::Error` made from a `SeamError` (bytes read through `std::io::Read`, whose errors are
/// `io::Error`) gets its kind back: this is the one place that looks inside an `io::Error`.
impl From<io::Error> for SeamError {
    fn from(error: io::Error) -> Self {
        if error.get_ref().is_some_and(|inner| inner.is::<SeamError>()) {
            let inner = error.into_inner().expect("checked above");
            return *inner.downcast::<SeamError>().expect("checked above");
        }
        let kind = match error.kind() {
            io::ErrorKind::NotFound => Kind::NotFound,
            _ => Kind::Other,
        };
        SeamError { kind, error }
    }
}

/// For the `std::io::Read` boundary: the kind rides inside and comes back through `From`.
impl From<SeamError> for io::Error {
    fn from(e: SeamError) -> Self {
        io::Error::new(e.error.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lost connection met while reading bytes (through `std::io::Read`) is still `Lost`
    /// when the copy gets it back: the pass ends as an outage, not as this file's failure.
    #[test]
    fn a_kind_survives_the_read_boundary() {
        let lost = SeamError::msg(Kind::Lost, "the share dropped the session");
        let through_read: io::Error = lost.into();
        let back = SeamError::from(through_read);
        assert_eq!(back.kind(), Kind::Lost);
        assert_eq!(back.to_string(), "the share dropped the session");
    }

    /// A plain OS error is classified by what it says, never as an outage.
    #[test]
    fn a_plain_os_error_is_about_one_file() {
        let missing = SeamError::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing.kind(), Kind::NotFound);
        let denied = SeamError::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(denied.kind(), Kind::Other);
        assert!(!denied.is_outage());
    }
}
