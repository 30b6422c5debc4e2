//! `--bronze-root s3://BUCKET[/PREFIX]`: Bronze in an S3-compatible bucket. The URL names only
//! the bucket and the prefix; credentials, region and endpoint come from the standard
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`) or from a credentials file in the AWS CLI's format
//! (`--s3-credentials-file`, for a service, which has no environment of yours), so no secret
//! is ever in a flag, a config file or a log line.

#[cfg(feature = "s3")]
mod client;

use std::path::Path;

/// A bucket and a key prefix, parsed from an `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// `/`-separated, without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

/// Whether a `--bronze-root` names a bucket rather than a folder: anything starting `s3:`, so
/// a mistyped `s3:/bucket` is refused instead of becoming a local folder named `s3:`.
pub fn is_s3_url(root: &str) -> bool {
    root.get(..3).is_some_and(|s| s.eq_ignore_ascii_case("s3:"))
}

impl S3Location {
    /// Parses `s3://BUCKET[/PREFIX]`; the reason when it is not one.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .get(5..)
            .filter(|_| {
                url.get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
            })
            .ok_or("an object store root is written s3://BUCKET[/PREFIX]")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_bucket(bucket) {
            return Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|part| part.is_empty() && !prefix.is_empty() || part == "." || part == "..")
        {
            return Err("the prefix may not hold empty, '.' or '..' parts".into());
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The store's default place: `storage/s3/BUCKET/PREFIX/ingest.redb` on local disk, one per
    /// bucket and prefix (the URL's parts are checked: no `..`, no empty parts).
    pub fn default_state(&self) -> std::path::PathBuf {
        let folder = Path::new("storage/s3").join(&self.bucket);
        let parts = self.prefix.split('/').filter(|p| !p.is_empty());
        parts.fold(folder, |f, p| f.join(p)).join("ingest.redb")
    }

    /// The URL as shown to people and handed to the hook.
    pub fn url(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}", self.bucket),
            prefix => format!("s3://{}/{prefix}", self.bucket),
        }
    }

    /// A build without the `s3` feature has no S3 client, and says so (the CLI refuses an
    /// s3:// `--bronze-root` in such a build before it gets here).
    #[cfg(not(feature = "s3"))]
    pub fn open(
        &self,
        _credentials: Option<&Path>,
        _request_timeout: std::time::Duration,
    ) -> Result<super::ObjectBronze, String> {
        Err("this ingest was built without the `s3` feature".into())
    }
}

/// S3's bucket naming rules, enough to refuse a typo or a path before any request.
fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bucket and prefix come apart as written; typos and paths that are not a bucket are
    /// refused before any request.
    #[test]
    fn s3_urls_parse_into_bucket_and_prefix() {
        let loc = S3Location::parse("s3://bronze").unwrap();
        assert_eq!((loc.bucket.as_str(), loc.prefix.as_str()), ("bronze", ""));
        let loc = S3Location::parse("S3://lake-1/raw/sensors/").unwrap();
        assert_eq!(
            (loc.bucket.as_str(), loc.prefix.as_str()),
            ("lake-1", "raw/sensors")
        );
        assert_eq!(loc.url(), "s3://lake-1/raw/sensors");
        let state = Path::new("storage/s3/lake-1/raw/sensors/ingest.redb");
        assert_eq!(
            loc.default_state(),
            state,
            "one store per bucket and prefix"
        );
        assert!(
            is_s3_url("s3:/bucket") && is_s3_url("S3:bucket"),
            "refused, not a folder"
        );
        for bad in [
            "s3://",
            "s3://Bronze",
            "s3://ab",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://bucket/a/./b",
            "s3:/bucket",
            "S3:bucket",
            "s3://my_bucket",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
