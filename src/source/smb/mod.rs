//! The share read natively over SMB2/3 (`--smb-path smb://[USER@]HOST[:PORT]/SHARE[/DIR]`),
//! without mounting it: no root, no kernel CIFS, no FUSE, and every lookup is one SMB round
//! trip instead of whatever a mount makes of it. The client is the pure-Rust `smb2` crate
//! (it sets `TCP_NODELAY` itself and reads a small file in one compound round trip; the
//! choice is in the README, "Reading the share without mounting it").
//!
//! - [`SmbSettings`]: where the share is and how to log in (the password never in the URL);
//! - [`SmbSource`] (`source.rs`): the share as a [`crate::source::Source`].

#[cfg(feature = "smb-native")]
mod session;
#[cfg(feature = "smb-native")]
mod source;

#[cfg(feature = "smb-native")]
pub use source::{lost_connection, SmbSource};

use crate::source::secret::SecretSource;
use crate::source::Source;
use std::io;
use std::time::Duration;

/// The share as a [`Source`], read natively; connects on first use. The one place a run picks
/// the native client.
#[cfg(feature = "smb-native")]
pub fn source(settings: SmbSettings) -> io::Result<Box<dyn Source + Send>> {
    Ok(Box::new(SmbSource::new(settings)?))
}

/// A build without the `smb-native` feature has no client, and says so (the CLI refuses an
/// smb:// `--smb-path` in such a build before it gets here).
#[cfg(not(feature = "smb-native"))]
pub fn source(_: SmbSettings) -> io::Result<Box<dyn Source + Send>> {
    Err(io::Error::other(
        "this ingest was built without the `smb-native` feature",
    ))
}

/// The SMB port when the URL names none.
pub const DEFAULT_PORT: u16 = 445;

/// Everything needed to reach the share. Built from the URL plus the password settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmbSettings {
    pub host: String,
    pub port: u16,
    pub share: String,
    /// The folder inside the share, `/`-separated, empty for the share's root.
    pub dir: String,
    /// Empty: a guest session.
    pub user: String,
    pub domain: String,
    pub password: Option<SecretSource>,
    /// Limit for connecting and for each request.
    pub timeout: Duration,
}

/// Whether `path` names a share natively (`smb://…`) rather than a mounted folder.
pub fn is_smb_url(path: &str) -> bool {
    path.get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("smb://"))
}

impl SmbSettings {
    /// Parses `smb://[USER@]HOST[:PORT]/SHARE[/DIR]`. A password in the URL is refused (it
    /// would stand in the process list and in logs), and so is a `..` folder. Errors never
    /// repeat the URL's user part.
    pub fn parse(url: &str) -> Result<SmbSettings, String> {
        if !is_smb_url(url) {
            return Err("not an smb:// URL".into());
        }
        let rest = &url[6..];
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // An unescaped '@' after the host is a password holding a '/' (`me:pa/ss@nas`), or a
        // folder name that must be written %40: refused either way, echoing nothing.
        if path.contains('@') {
            return Err("an '@' after the host: a password does not belong in the URL (use SMB_PASSWORD or --smb-password-file); an '@' in a share or folder name is written %40".into());
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, _)) if user.contains(':') => {
                return Err("a password does not belong in the URL (it would show in the process list): use SMB_PASSWORD or --smb-password-file".into())
            }
            Some((user, hostport)) => (decode(user)?, hostport),
            None => (String::new(), authority),
        };
        let (host, port) = host_and_port(hostport)?;
        let parts: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .map(decode)
            .collect::<Result<_, _>>()?;
        let (share, dir) = parts
            .split_first()
            .ok_or("no share name: smb://HOST/SHARE[/DIR]")?;
        if share == ".." || dir.iter().any(|p| p == ".." || p.contains('/')) {
            return Err("`..` is not a folder of the share".into());
        }
        Ok(SmbSettings {
            host,
            port,
            share: share.clone(),
            dir: dir.join("/"),
            user,
            domain: String::new(),
            password: None,
            timeout: Duration::from_secs(30),
        })
    }

    /// `smb://USER@HOST:PORT/SHARE/DIR`, for messages (never the password).
    pub fn url(&self) -> String {
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!("{}@", self.user)
        };
        let dir = if self.dir.is_empty() {
            String::new()
        } else {
            format!("/{}", self.dir)
        };
        format!("smb://{user}{}/{}{dir}", self.addr(), self.share)
    }

    /// `host:port` as the client dials it.
    pub fn addr(&self) -> String {
        crate::source::host_port(&self.host, self.port)
    }
}

/// A URL part with its `%XX` escapes decoded (`My%20Folder`, as file managers write URLs);
/// a space may also stand as it is.
fn decode(part: &str) -> Result<String, String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or("a % in the URL is not followed by two hex digits")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's escapes are not UTF-8".into())
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn host_and_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, after)) => (host, Some(after.strip_prefix(':').ok_or("text after ]")?)),
            None => return Err("an unclosed [ in the host".into()),
        },
        None => match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        },
    };
    if host.is_empty() {
        return Err("no host: smb://HOST/SHARE".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("the port is not a number from 1 to 65535")?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the URL forms users write parse into their parts, and bad ones are refused
    /// with a reason that does not echo a password.
    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let s = SmbSettings::parse("smb://sensor@nas.local:4450/data/Sensors/raw").unwrap();
        assert_eq!(
            (s.user.as_str(), s.host.as_str(), s.port),
            ("sensor", "nas.local", 4450)
        );
        assert_eq!((s.share.as_str(), s.dir.as_str()), ("data", "Sensors/raw"));
        assert_eq!(s.url(), "smb://sensor@nas.local:4450/data/Sensors/raw");
        let s = SmbSettings::parse("SMB://127.0.0.1/sensors/").unwrap();
        assert_eq!((s.port, s.dir.as_str(), s.user.as_str()), (445, "", ""));
        let s = SmbSettings::parse("smb://me%40corp@nas/My%20Share/Raw Data/2023").unwrap();
        assert_eq!((s.user.as_str(), s.share.as_str()), ("me@corp", "My Share"));
        assert_eq!(s.dir, "Raw Data/2023");
        let s = SmbSettings::parse("smb://[::1]:4450/sensors").unwrap();
        assert_eq!((s.host.as_str(), s.addr()), ("::1", "[::1]:4450".into()));
        for bad in [
            "smb://nas/",
            "smb://:445/share",
            "smb://nas:0/share",
            "smb://nas:x/share",
            "smb://nas/share/../etc",
            "smb://nas/share/%2E%2E",
            "smb://nas/share/a%2Fb",
            "smb://nas/share/%zz",
            "/mnt/share",
        ] {
            assert!(SmbSettings::parse(bad).is_err(), "{bad}");
        }
        for (url, secret) in [
            ("smb://me:hunter2@nas/share", "hunter2"),
            ("smb://me:p4ss/w0rd@nas/share", "p4ss"),
            ("smb://me:12/x@nas/share", "12"),
            ("smb://me:hunter2@nas:445/share", "hunter2"),
        ] {
            let err = SmbSettings::parse(url).unwrap_err();
            assert!(!err.contains(secret), "{url}: {err}");
        }
        assert!(SmbSettings::parse("smb://[::1]junk/share").is_err());
    }
}
