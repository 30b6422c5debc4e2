//! Host-key verification: the server must present a key we already trust, either listed in an
//! OpenSSH `known_hosts` file or pinned by its SHA256 fingerprint. Anything else is refused
//! before we log in, so no password is ever sent to (and no file read from) an impostor.
//!
//! The `known_hosts` file is read line by line, so one entry libssh2 cannot parse (a key type
//! it does not know, a certificate authority) does not hide the entries after it.

use super::{fingerprint, HostKeyCheck, SftpError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};
use std::io::{self, Write};
use std::path::Path;

/// What a `known_hosts` file says about a host and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// The host is listed with a different key.
    Mismatch,
    /// The key is listed as `@revoked`.
    Revoked,
    NotFound,
}

/// Checks the key the server presented during the handshake; on first use (when asked to),
/// records it.
pub fn verify(
    session: &Session,
    check: &HostKeyCheck,
    host: &str,
    port: u16,
    addr: &str,
) -> Result<(), SftpError> {
    let handshake = |detail: &str| SftpError::Handshake {
        addr: addr.to_owned(),
        detail: detail.to_owned(),
    };
    let (key, _) = session
        .host_key()
        .ok_or_else(|| handshake("the server presented no host key"))?;
    let digest = session
        .host_key_hash(HashType::Sha256)
        .ok_or_else(|| handshake("cannot hash the server's host key"))?;
    let seen = fingerprint(digest);
    let mismatch = |expected: String| SftpError::HostKeyMismatch {
        addr: addr.to_owned(),
        fingerprint: seen.clone(),
        expected,
    };
    let (file, accept_new) = match check {
        HostKeyCheck::Pinned(pin) if *pin == seen => return Ok(()),
        HostKeyCheck::Pinned(pin) => return Err(mismatch(format!("the pinned fingerprint {pin}"))),
        HostKeyCheck::KnownHosts { file, accept_new } => (file, *accept_new),
    };
    let kh_error = |detail: String| SftpError::KnownHosts {
        addr: addr.to_owned(),
        path: file.clone(),
        detail,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(kh_error(e.to_string())),
    };
    match known_hosts_verdict(session, &text, host, port, key) {
        Verdict::Match => Ok(()),
        Verdict::Mismatch => Err(mismatch(format!(
            "the key recorded for {host} in {}",
            file.display()
        ))),
        Verdict::Revoked => Err(mismatch(format!(
            "{}, which marks this key @revoked",
            file.display()
        ))),
        Verdict::NotFound if accept_new => {
            append_entry(file, host, port, key).map_err(|e| kh_error(e.to_string()))?;
            tracing::warn!(server = addr, fingerprint = %seen, known_hosts = %file.display(),
                "trusted a new host key on first use (--accept-new-host-key) and recorded it");
            Ok(())
        }
        Verdict::NotFound => Err(SftpError::UnknownHostKey {
            addr: addr.to_owned(),
            fingerprint: seen,
            known_hosts: file.clone(),
        }),
    }
}

/// Looks `host`/`port` and the raw key blob up in the text of a `known_hosts` file. Plain and
/// hashed (`|1|`) host names and `[host]:port` entries are understood (libssh2 does the
/// matching); `@revoked` lines are honoured; lines libssh2 cannot parse are skipped.
pub fn known_hosts_verdict(
    session: &Session,
    text: &str,
    host: &str,
    port: u16,
    key: &[u8],
) -> Verdict {
    let Ok(mut known) = session.known_hosts() else {
        return Verdict::NotFound;
    };
    let ours = STANDARD.encode(key);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            // `@revoked HOSTS TYPE KEY`: any host, this key is never to be trusted.
            let mut parts = rest.split_whitespace();
            if parts.next() == Some("revoked") && parts.nth(2) == Some(ours.as_str()) {
                return Verdict::Revoked;
            }
            continue; // @cert-authority: certificates are not used here.
        }
        let _ = known.read_str(line, KnownHostFileKind::OpenSSH);
    }
    match known.check_port(host, port, key) {
        CheckResult::Match => Verdict::Match,
        CheckResult::Mismatch => Verdict::Mismatch,
        CheckResult::NotFound | CheckResult::Failure => Verdict::NotFound,
    }
}

/// The `known_hosts` line OpenSSH itself would write: `host` for port 22, else `[host]:port`.
pub fn entry_line(host: &str, port: u16, key: &[u8]) -> io::Result<String> {
    let pattern = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    let kind = key_type(key).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "malformed host key from server")
    })?;
    Ok(format!("{pattern} {kind} {}\n", STANDARD.encode(key)))
}

/// The algorithm name that starts an SSH public-key blob (a length-prefixed string).
fn key_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = std::str::from_utf8(blob.get(4..4 + len)?).ok()?;
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-@.".contains(&b))
        .then_some(name)
}

/// Appends one entry, creating the file (mode 0600) and its folder if needed.
fn append_entry(file: &Path, host: &str, port: u16, key: &[u8]) -> io::Result<()> {
    let line = entry_line(host, port, key)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    // Elsewhere (Windows) a new file inherits its folder's ACL: `.ssh` in the user's profile.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file)?;
    // A file whose last line lacks its newline must not swallow our entry.
    let needs_newline = std::fs::read(file)?.last().is_some_and(|b| *b != b'\n');
    if needs_newline {
        out.write_all(b"\n")?;
    }
    out.write_all(line.as_bytes())?;
    out.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 public-key blob with the given 32 key bytes.
    fn ed25519_blob(fill: u8) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[fill; 32]);
        blob
    }

    fn verdict(text: &str, port: u16, key: &[u8]) -> Verdict {
        let session = Session::new().unwrap();
        known_hosts_verdict(&session, text, "127.0.0.1", port, key)
    }

    #[test]
    fn known_hosts_entries_match_mismatch_or_are_missing() {
        let (ours, theirs) = (ed25519_blob(1), ed25519_blob(2));
        let ours_line = entry_line("127.0.0.1", 2222, &ours).unwrap();
        assert!(ours_line.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"));
        assert_eq!(verdict(&ours_line, 2222, &ours), Verdict::Match);
        assert_eq!(verdict(&ours_line, 2222, &theirs), Verdict::Mismatch);
        assert_eq!(verdict("", 2222, &ours), Verdict::NotFound);
        let other_host = ours_line.replace("127.0.0.1", "10.0.0.9");
        assert_eq!(verdict(&other_host, 2222, &ours), Verdict::NotFound);
        let port_22 = entry_line("127.0.0.1", 22, &ours).unwrap();
        assert!(port_22.starts_with("127.0.0.1 ssh-ed25519 "));
        assert_eq!(verdict(&port_22, 22, &ours), Verdict::Match);
    }

    #[test]
    fn unparsable_lines_do_not_hide_later_entries_and_revoked_keys_are_refused() {
        let ours = ed25519_blob(1);
        let line = entry_line("127.0.0.1", 2222, &ours).unwrap();
        let text = format!("# comment\n\nbogus line here\nx sk-unknown-type AAAA\n{line}");
        assert_eq!(verdict(&text, 2222, &ours), Verdict::Match);
        let revoked = format!("{text}@revoked * ssh-ed25519 {}\n", STANDARD.encode(&ours));
        assert_eq!(verdict(&revoked, 2222, &ours), Verdict::Revoked);
    }

    #[test]
    fn accepting_a_new_key_appends_one_line_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ssh").join("known_hosts");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "other ssh-ed25519 AAAA").unwrap();
        append_entry(&file, "127.0.0.1", 2222, &ed25519_blob(3)).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("other ssh-ed25519 AAAA\n[127.0.0.1]:2222 ssh-ed25519 "));
        assert_eq!(
            verdict(&text, 2222, &ed25519_blob(3)),
            Verdict::Match,
            "{text}"
        );
    }
}
