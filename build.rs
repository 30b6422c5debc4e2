//! Stamps the binary with the commit it was built from and that commit's date, for
//! `ingest --version` (a bug report then names exactly what ran). The date is the commit's, not
//! the clock's, so two builds of one commit are identical; `SOURCE_DATE_EPOCH` overrides it, as
//! reproducible-build tooling sets it. Outside a git checkout both are "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// `YYYY-MM-DD` of a Unix time in seconds (UTC), by the civil-from-days algorithm (no
/// dependency for a build script).
fn date_of(epoch_secs: i64) -> String {
    let z = epoch_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(secs) => date_of(secs),
        None => git(&["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into()),
    };
    println!("cargo:rustc-env=INGEST_COMMIT={commit}");
    println!("cargo:rustc-env=INGEST_COMMIT_DATE={date}");
    // A new commit moves HEAD or the branch it names: stamp again then, and only then.
    for dir in ["--git-dir", "--git-common-dir"]
        .iter()
        .filter_map(|a| git(&["rev-parse", a]))
    {
        // Only paths that exist: cargo reruns a build script whose watched path is missing on
        // every build (and recompiles the crate after it).
        for watched in ["HEAD", "refs/heads", "packed-refs"] {
            let path = format!("{dir}/{watched}");
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
