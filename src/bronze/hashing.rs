//! Staging's one read pass: the bytes of a source file are written to where they are staged
//! and hashed with blake3 as they go by, so a file is never read twice (a second read could
//! see other bytes than the first wrote). Reading goes through [`ContentHash::of_reader`], which
//! retries an interrupted read.

use crate::identity::ContentHash;
use std::io::{self, Read, Write};

/// Which side of a copy failed: the source (read) or where the bytes were written.
pub(super) enum Copying {
    Reading(io::Error),
    Writing(io::Error),
}

impl Copying {
    /// The error, whichever side it came from.
    pub(super) fn into_error(self) -> io::Error {
        match self {
            Copying::Reading(e) | Copying::Writing(e) => e,
        }
    }
}

/// Copies `reader` to its end into `out`, hashing the bytes on the way: their hash and count.
pub(super) fn copy_hashing(
    reader: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(ContentHash, u64), Copying> {
    let mut tee = Tee {
        reader,
        out,
        copied: 0,
        write_error: None,
    };
    match ContentHash::of_reader(&mut tee) {
        Ok(hash) => Ok((hash, tee.copied)),
        Err(e) => Err(match tee.write_error.take() {
            Some(written) => Copying::Writing(written),
            None => Copying::Reading(e),
        }),
    }
}

/// A reader that writes every block it reads to `out` before handing it on (to the hasher).
struct Tee<'a> {
    reader: &'a mut dyn Read,
    out: &'a mut dyn Write,
    copied: u64,
    /// A failed write, kept aside so the caller can tell it from a failed read: the hasher
    /// only sees that reading stopped.
    write_error: Option<io::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            self.write_error = Some(e);
            return Err(io::Error::other("writing the copy failed"));
        }
        self.copied += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy holds every byte, once, and the hash is blake3 of them; a reader interrupted
    /// on the way is read again, not failed.
    #[test]
    fn copies_and_hashes_in_one_pass_through_interruptions() {
        struct Interrupting<'a>(&'a [u8], bool);
        impl Read for Interrupting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let bytes = b"the bytes of one minute".repeat(100);
        let mut out = Vec::new();
        let copied = copy_hashing(&mut Interrupting(&bytes, false), &mut out);
        let (hash, count) = copied.unwrap_or_else(|e| panic!("{}", e.into_error()));
        assert_eq!(out, bytes);
        assert_eq!(count, bytes.len() as u64);
        assert_eq!(hash, ContentHash::from(blake3::hash(&bytes)));
    }

    /// A failed write is told apart from a failed read.
    #[test]
    fn a_failed_write_is_the_writing_side() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        match copy_hashing(&mut &b"bytes"[..], &mut Full) {
            Err(Copying::Writing(e)) => assert_eq!(e.kind(), io::ErrorKind::StorageFull),
            Err(Copying::Reading(e)) => panic!("a write failure taken for a read: {e}"),
            Ok(_) => panic!("a write failure went unnoticed"),
        }
    }
}
