//! The share read natively over SMB2/3 (`--smb-path smb://[USER@]HOST[:PORT]/SHARE[/DIR]`),
//! without mounting it: no root, no kernel CIFS, no FUSE, and every lookup is one SMB round
//! trip instead of whatever a mount makes of it. The client is the pure-Rust `smb2` crate
//! (it sets `TCP_NODELAY` itself and reads a small file in one compound round trip; the
//! choice is in the README, "Reading the share without mounting it").
//!
//! - [`SmbSettings`]: where the share is and how to log in (the password never in the URL);
//! - [`SmbSource`] (`source.rs`): the share as a [`crate::source::Source`]; `compound.rs` reads
//!   a small file whole in one round trip, seen before and after the read.

#[cfg(feature = "smb-native")]
mod compound;
#[cfg(feature = "smb-native")]
mod session;
#[cfg(feature = "smb-native")]
mod source;

#[cfg(feature = "smb-native")]
pub use source::SmbSource;

use crate::source::secret::SecretSource;
use crate::source::{Counted, Source};
use percent_encoding::percent_decode_str;
use std::io;
use std::time::Duration;
use url::{Host, ParseError, Url};

/// The share as a [`Source`] (counted, as every source a run reads), read natively; connects
/// on first use. The one place a run picks the native client.
#[cfg(feature = "smb-native")]
pub fn source(settings: SmbSettings) -> io::Result<Box<Counted<dyn Source + Send>>> {
    Ok(Box::new(Counted::new(SmbSource::new(settings)?)))
}

/// A build without the `smb-native` feature has no client, and says so (the CLI refuses an
/// smb:// `--smb-path` in such a build before it gets here).
#[cfg(not(feature = "smb-native"))]
pub fn source(_: SmbSettings) -> io::Result<Box<Counted<dyn Source + Send>>> {
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
    /// Parses `smb://[USER@]HOST[:PORT]/SHARE[/DIR]` (the `url` crate splits it; `%XX`
    /// escapes are decoded, as file managers write them). A password in the URL is refused (it
    /// would stand in the process list and in logs), and so is a `..` folder. Errors never
    /// repeat any part of the URL.
    pub fn parse(text: &str) -> Result<SmbSettings, String> {
        if !is_smb_url(text) {
            return Err("not an smb:// URL".into());
        }
        refuse_password_and_dot_dot(text)?;
        let url = Url::parse(text).map_err(|e| match e {
            ParseError::EmptyHost => "no host: smb://HOST/SHARE".to_owned(),
            ParseError::InvalidPort => "the port is not a number from 1 to 65535".to_owned(),
            other => format!("not an smb://[USER@]HOST[:PORT]/SHARE[/DIR] URL: {other}"),
        })?;
        if url.password().is_some() {
            return Err(PASSWORD_IN_URL.into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(
                "a '?' or '#' in the URL: in a share or folder name it is written %3F or %23"
                    .into(),
            );
        }
        let host = match url.host() {
            Some(Host::Ipv6(v6)) => v6.to_string(),
            Some(host) if !host.to_string().is_empty() => host.to_string(),
            _ => return Err("no host: smb://HOST/SHARE".into()),
        };
        let port = match url.port() {
            None => DEFAULT_PORT,
            Some(0) => return Err("the port is not a number from 1 to 65535".into()),
            Some(port) => port,
        };
        let parts: Vec<String> = (url.path_segments().into_iter().flatten())
            .filter(|p| !p.is_empty())
            .map(decode)
            .collect::<Result<_, _>>()?;
        let (share, dir) = parts
            .split_first()
            .ok_or("no share name: smb://HOST/SHARE[/DIR]")?;
        if parts.iter().any(|p| p.contains('/')) {
            return Err("a '/' inside a share or folder name (%2F)".into());
        }
        Ok(SmbSettings {
            host,
            port,
            share: share.clone(),
            dir: dir.join("/"),
            user: decode(url.username())?,
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

/// Why a password is refused in the URL, said without repeating it.
const PASSWORD_IN_URL: &str = "a password does not belong in the URL (it would show in the process list): use SMB_PASSWORD or --smb-password-file";

/// What the URL's text must not hold, checked before the `url` crate normalizes it: an '@'
/// after the host is a password holding a '/' (`me:pa/ss@nas`, which would otherwise parse
/// as host `me`, port `pa`) or a folder name that must be written %40; and a `..` folder
/// (plain or escaped), which the parser would silently resolve into another folder.
fn refuse_password_and_dot_dot(text: &str) -> Result<(), String> {
    let after_scheme = &text["smb://".len()..];
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    if path.contains('@') {
        return Err(format!("an '@' after the host: {PASSWORD_IN_URL}; an '@' in a share or folder name is written %40"));
    }
    if path
        .split('/')
        .any(|part| decode(part).is_ok_and(|p| p == ".."))
    {
        return Err("`..` is not a folder of the share".into());
    }
    Ok(())
}

/// A URL part with its `%XX` escapes decoded (`My%20Folder`); a `%` not followed by two hex
/// digits is refused rather than kept as it is.
fn decode(part: &str) -> Result<String, String> {
    let bytes = part.as_bytes();
    let escape_ok = |i: usize| {
        bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    };
    if (0..bytes.len()).any(|i| bytes[i] == b'%' && !escape_ok(i)) {
        return Err("a % in the URL is not followed by two hex digits".into());
    }
    percent_decode_str(part)
        .decode_utf8()
        .map(|p| p.into_owned())
        .map_err(|_| "the URL's escapes are not UTF-8".into())
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

    /// Proves what the `url` crate would resolve, split or keep differently is refused with
    /// the reason a user needs, never echoing the URL: a `..` (it would resolve it into
    /// another folder), a '?' or '#' (a query, a fragment), a password, a bad port or host.
    #[test]
    fn what_the_url_parser_would_normalize_is_refused_saying_why() {
        for (url, why) in [
            ("smb://nas/share/../etc", "`..`"),
            ("smb://nas/share/a/%2e%2E/b", "`..`"),
            ("smb://nas/share/a?b", "%3F"),
            ("smb://nas/share/a#b", "%23"),
            ("smb://me:hunter2@nas/share", "password"),
            ("smb://me:p4ss/w0rd@nas/share", "password"),
            ("smb://nas:99999/share", "1 to 65535"),
            ("smb://:445/share", "no host"),
            ("smb://me@/share", "no host"),
        ] {
            let err = SmbSettings::parse(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
            for echoed in ["hunter2", "p4ss", "nas", "etc"] {
                assert!(!err.contains(echoed), "{url} echoed: {err}");
            }
        }
        let s = SmbSettings::parse("smb://NAS/Share/./raw/").unwrap();
        let parts = (s.host.as_str(), s.share.as_str(), s.dir.as_str());
        assert_eq!(parts, ("NAS", "Share", "raw"));
    }
}
