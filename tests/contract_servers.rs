//! The contract suites (`src/testing/contract`, included here as `crate::contract`) against
//! the real servers on loopback: Bronze in a real Garage bucket (the client as `s3://` roots
//! open it), the share read natively from a real smbd, and the weather folder over sFTP from
//! a real sshd. The unit tests run the same suites against the folder and in-memory
//! implementations and the fault wrappers. Each run names the checks it expects skipped.

/// Writes `name` in `dir` holding `bytes`, modified at the contract's mtime, readable by all
/// (the sFTP server reads as its own user).
#[cfg(any(feature = "sftp", feature = "smb-native"))]
fn put_file(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(crate::contract::mtime()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[cfg(feature = "s3")]
mod garage {
    use crate::contract::bronze::{self, BronzeFixture};
    use crate::garage::Garage;
    use ingest::bronze::s3::S3Location;
    use ingest::bronze::{Bronze, ObjectBronze};
    use std::path::PathBuf;
    use std::time::Duration;

    /// A layer below `contract/` in a Garage bucket of its own.
    struct OnGarage {
        bronze: ObjectBronze,
        garage: Garage,
        _credentials: tempfile::TempDir,
    }

    impl OnGarage {
        /// Opened as `--bronze-root s3://bronze/contract --s3-credentials-file` opens it (the
        /// client's own retries and timeouts), with a 5 s request timeout.
        fn start() -> OnGarage {
            let garage = Garage::start();
            let credentials = tempfile::tempdir().unwrap();
            let get = |k: &str| garage.env.iter().find(|(n, _)| *n == k).unwrap().1.clone();
            let file = credentials.path().join("credentials");
            let text = format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {}\n\
                 endpoint_url = {}\n",
                get("AWS_ACCESS_KEY_ID"),
                get("AWS_SECRET_ACCESS_KEY"),
                get("AWS_REGION"),
                get("AWS_ENDPOINT_URL")
            );
            std::fs::write(&file, text).unwrap();
            let location = S3Location::parse("s3://bronze/contract").unwrap();
            let bronze = location.open(Some(&file), Duration::from_secs(5)).unwrap();
            OnGarage {
                bronze,
                garage,
                _credentials: credentials,
            }
        }
    }

    const NO_LINKS: &str = "an object store has no links: every key is an object";

    impl BronzeFixture for OnGarage {
        fn bronze(&self) -> &dyn Bronze {
            &self.bronze
        }

        fn link_file(&self, _: &str) -> Result<PathBuf, &'static str> {
            Err(NO_LINKS)
        }

        fn link_folder(&self, _: &str) -> Result<(), &'static str> {
            Err(NO_LINKS)
        }

        /// The node stops (its data kept): every request is refused from now on.
        fn cut_off(&self) -> Result<(), &'static str> {
            self.garage.stop();
            Ok(())
        }
    }

    #[test]
    fn bronze_contract_object_over_a_real_garage() {
        let skipped = bronze::run(&OnGarage::start());
        assert_eq!(skipped.names(), ["a_link_is_never_followed"]);
    }
}

#[cfg(feature = "smb-native")]
mod smb {
    use crate::contract::source::{self, SourceFixture};
    use crate::samba::Samba;
    use crate::smb_native::{PASSWORD, USER};
    use ingest::source::secret::{Secret, SecretSource};
    use ingest::source::smb::SmbSettings;
    use ingest::source::{SmbSource, Source};
    use std::time::Duration;

    /// An empty folder served by a smbd of its own, read natively as USER.
    struct OnSmb {
        source: SmbSource,
        samba: Samba,
        folder: tempfile::TempDir,
    }

    impl OnSmb {
        fn start() -> OnSmb {
            let folder = tempfile::tempdir().unwrap();
            let samba = Samba::serve_as(folder.path(), Some((USER, PASSWORD)));
            let url = format!("smb://{USER}@127.0.0.1:{}/sensors", samba.port);
            let mut settings = SmbSettings::parse(&url).unwrap();
            settings.password = Some(SecretSource::Value(Secret::new(PASSWORD)));
            settings.timeout = Duration::from_secs(5);
            let source = SmbSource::new(settings).unwrap();
            OnSmb {
                source,
                samba,
                folder,
            }
        }
    }

    impl SourceFixture for OnSmb {
        fn source(&self) -> &dyn Source {
            &self.source
        }

        fn put(&self, name: &str, bytes: &[u8]) {
            super::put_file(self.folder.path(), name, bytes);
        }

        fn delete(&self, name: &str) {
            std::fs::remove_file(self.folder.path().join(name)).unwrap();
        }

        /// Tried: smbd serves a link inside the share as its target's plain file and hides
        /// one that leads outside it (`follow symlinks = yes`, `wide links = no`, the
        /// defaults), so no link ever reaches the client to report.
        fn link(&self, _: &str) -> Result<(), &'static str> {
            Err("smbd resolves links itself: the client never sees one")
        }

        /// smbd and its connection processes are stopped, as a server that goes down.
        fn drop_session(&mut self) -> Result<(), &'static str> {
            self.samba.stop();
            Ok(())
        }
    }

    #[test]
    fn source_contract_native_smb_over_a_real_smbd() {
        let skipped = source::run(&mut OnSmb::start());
        assert_eq!(skipped.names(), ["a_link_is_reported_never_followed"]);
    }
}

#[cfg(feature = "sftp")]
mod sftp {
    use crate::contract::source::{self, SourceFixture};
    use crate::sshd::{Sshd, USER};
    use ingest::source::sftp::{Auth, HostKeyCheck, SftpSettings};
    use ingest::source::{SftpSource, Source};
    use std::time::Duration;

    /// The empty folder a sshd of its own serves, read over sFTP with the client key.
    struct OnSftp {
        source: SftpSource,
        sshd: Sshd,
    }

    impl OnSftp {
        fn start() -> OnSftp {
            let sshd = Sshd::start();
            let settings = SftpSettings {
                host: "127.0.0.1".into(),
                port: sshd.port,
                user: USER.into(),
                auth: Auth::Key {
                    file: sshd.key.clone(),
                    passphrase: None,
                },
                path: sshd.remote.display().to_string(),
                host_key: HostKeyCheck::KnownHosts {
                    file: sshd.known_hosts.clone(),
                    accept_new: false,
                },
                timeout: Duration::from_secs(10),
            };
            OnSftp {
                source: SftpSource::new(settings),
                sshd,
            }
        }
    }

    impl SourceFixture for OnSftp {
        fn source(&self) -> &dyn Source {
            &self.source
        }

        fn put(&self, name: &str, bytes: &[u8]) {
            super::put_file(&self.sshd.remote, name, bytes);
        }

        fn delete(&self, name: &str) {
            std::fs::remove_file(self.sshd.remote.join(name)).unwrap();
        }

        /// A link in the served folder to a file outside it (sshd reports links as links).
        fn link(&self, name: &str) -> Result<(), &'static str> {
            let outside = self.sshd.dir.path().join("outside.csv");
            std::fs::write(&outside, b"not the server's").unwrap();
            std::os::unix::fs::symlink(&outside, self.sshd.remote.join(name)).unwrap();
            Ok(())
        }

        /// The server and its connection processes are killed (SIGKILL).
        fn drop_session(&mut self) -> Result<(), &'static str> {
            self.sshd.kill();
            Ok(())
        }
    }

    #[test]
    fn source_contract_sftp_over_a_real_sshd() {
        let skipped = source::run(&mut OnSftp::start());
        assert_eq!(skipped.names(), Vec::<&str>::new());
    }
}
