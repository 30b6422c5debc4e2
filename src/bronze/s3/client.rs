//! The S3 client behind an `s3://` Bronze root (the `s3` feature): object_store's Amazon S3
//! builder, configured from the `AWS_*` variables or an AWS-CLI-style credentials file, with
//! rustls over ring and the platform's certificate store. No secret is ever in a flag, a
//! config file or a log line; a credentials file's problem names its line, never its text.

use super::S3Location;
use crate::bronze::object::ObjectBronze;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{ClientConfigKey, RetryConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the client retries a failing request (a store that is down must end the pass in
/// seconds, not hang it for the client's default minutes), and at most one request's timeout
/// (`--s3-timeout-secs`, default 120 s: a request includes its body, and a download of a
/// large object must fit, 1 GiB at ~9 MB/s; uploads go in 8 MiB parts). So a store that
/// accepts connections but never answers costs one timeout per request, not several.
const RETRY_FOR: Duration = Duration::from_secs(15);
const RETRIES: usize = 3;

impl S3Location {
    /// A Bronze layer in this bucket, configured from the `AWS_*` variables. Makes no request:
    /// a store that cannot be reached fails the first copy, like a folder that cannot be
    /// written. Credentials are required (no instance-metadata lookup, which would reach past
    /// loopback and hang where there is none); the reason names the variable when missing.
    pub fn open(
        &self,
        credentials: Option<&Path>,
        request_timeout: Duration,
    ) -> Result<ObjectBronze, String> {
        let file = match credentials {
            Some(path) => CredentialsFile::read(path)?,
            None => CredentialsFile::default(),
        };
        for (var, from_file) in [
            ("AWS_ACCESS_KEY_ID", &file.key_id),
            ("AWS_SECRET_ACCESS_KEY", &file.secret),
        ] {
            if from_file.is_none() && std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                return Err(format!(
                    "{var} is not set (needed for {}; or give --s3-credentials-file)",
                    self.url()
                ));
            }
        }
        // Trust the platform's certificate store, through rustls with ring (see Cargo.toml).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let retry = RetryConfig {
            max_retries: RETRIES,
            retry_timeout: RETRY_FOR.min(request_timeout),
            ..Default::default()
        };
        // Set key by key: `with_client_options` would drop AWS_ALLOW_HTTP read from the
        // environment.
        let timeout = |key, d: Duration| {
            (
                AmazonS3ConfigKey::Client(key),
                format!("{}ms", d.as_millis()),
            )
        };
        let store = [
            timeout(ClientConfigKey::Timeout, request_timeout),
            timeout(ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT),
        ]
        .into_iter()
        .fold(file.apply(builder_from_env(&file)), |b, (key, value)| {
            b.with_config(key, value)
        })
        .with_bucket_name(&self.bucket)
        .with_retry(retry)
        .build()
        .map_err(|e| format!("{}: {e}", self.url()))?;
        ObjectBronze::new(Arc::new(store), &self.prefix, self.url())
            .map_err(|e| format!("starting the object store client: {e}"))
    }
}

/// What a credentials file in the AWS CLI's format gives (`[default]`, else its first
/// section): `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, and, as in
/// `~/.aws/config`, `region` and `endpoint_url`. Its values win over the environment's.
#[derive(Default)]
struct CredentialsFile {
    key_id: Option<String>,
    secret: Option<String>,
    token: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
}

impl CredentialsFile {
    /// Reads `path`; a problem names the file and the line number, never a line's text (it
    /// may hold the secret).
    fn read(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the credentials file {shown}: {e}"))?;
        let mut out = CredentialsFile::default();
        let (mut section, mut chosen) = (None::<String>, None::<String>);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(name.trim().to_owned());
                if chosen.is_none()
                    || name.trim() == "default" && chosen.as_deref() != Some("default")
                {
                    if chosen.is_some() {
                        out = CredentialsFile::default();
                    }
                    chosen = section.clone();
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("{shown}, line {}: not `key = value`", n + 1));
            };
            if section.is_some() && section != chosen {
                continue;
            }
            let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => out.key_id = value,
                "aws_secret_access_key" => out.secret = value,
                "aws_session_token" => out.token = value,
                "region" => out.region = value,
                "endpoint_url" => out.endpoint = value,
                _ => {}
            }
        }
        Ok(out)
    }

    /// The builder with the file's values set. An `http://` endpoint in the file allows plain
    /// HTTP (it was asked for explicitly; the environment needs `AWS_ALLOW_HTTP` for that).
    fn apply(&self, mut b: AmazonS3Builder) -> AmazonS3Builder {
        if let Some(v) = &self.key_id {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = &self.secret {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = &self.token {
            b = b.with_token(v);
        }
        if let Some(v) = &self.region {
            b = b.with_region(v);
        }
        if let Some(v) = &self.endpoint {
            b = b.with_endpoint(v).with_allow_http(v.starts_with("http://"));
        }
        b
    }
}

/// The builder with the `AWS_*` variables, as `AmazonS3Builder::from_env` reads them, except
/// the credentials when the file gives keys: a session token left in the shell must not be
/// paired with the file's keys.
fn builder_from_env(file: &CredentialsFile) -> AmazonS3Builder {
    use std::str::FromStr;
    let mut builder = AmazonS3Builder::new();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        let Ok(key) = AmazonS3ConfigKey::from_str(&name.to_ascii_lowercase()) else {
            continue;
        };
        let credential = matches!(
            key,
            AmazonS3ConfigKey::AccessKeyId
                | AmazonS3ConfigKey::SecretAccessKey
                | AmazonS3ConfigKey::Token
        );
        if name.starts_with("AWS_") && !(credential && file.key_id.is_some()) {
            builder = builder.with_config(key, value);
        }
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A credentials file gives its `[default]` section (wherever it is), the other sections
    /// ignored; a malformed line is refused naming its number, not its text.
    #[test]
    fn a_credentials_file_gives_its_default_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[other]\naws_access_key_id = NOPE\n\n[default]\n# comment\naws_access_key_id = GK1\n\
             aws_secret_access_key = s3cr3t\nregion = garage\nendpoint_url = http://127.0.0.1:3900\n",
        )
        .unwrap();
        let file = CredentialsFile::read(&path).unwrap();
        assert_eq!(file.key_id.as_deref(), Some("GK1"));
        assert_eq!(file.secret.as_deref(), Some("s3cr3t"));
        assert_eq!(file.region.as_deref(), Some("garage"));
        assert_eq!(file.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        std::fs::write(&path, "[default]\naws_secret_access_key s3cr3t\n").unwrap();
        let Err(why) = CredentialsFile::read(&path) else {
            panic!("accepted")
        };
        assert!(why.contains("line 2") && !why.contains("s3cr3t"), "{why}");
    }
}
