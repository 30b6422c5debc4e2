//! Settings that need a Cargo feature (README, "Build features"): in a build without it they
//! are refused before anything runs, as a configuration error (exit 2) naming the feature and
//! the setting, never a panic and never the setting's value (a URL may carry a password). In
//! a build with it, the same settings never meet that refusal.

use crate::cli::Cli;
use crate::error::Error;
use clap::Parser;

/// `ingest ARGS status`, resolved.
fn resolve(args: &[&str]) -> crate::Result<super::Resolved> {
    let argv = ["ingest"].iter().chain(args).chain(&["status"]);
    let cli = Cli::try_parse_from(argv).expect("the arguments parse");
    cli.global.resolve()
}

#[test]
fn a_setting_whose_feature_is_not_built_is_exit_2_naming_the_feature() {
    let cases: [(&[&str], &str, bool); 3] = [
        (
            &["--smb-path", "smb://me:hunter2@nas/share"],
            "smb-native",
            cfg!(feature = "smb-native"),
        ),
        (
            &["--bronze-root", "s3://hunter2-bucket/raw"],
            "s3",
            cfg!(feature = "s3"),
        ),
        (
            &["--sftp-host", "hunter2.example", "--sftp-user", "u"],
            "sftp",
            cfg!(feature = "sftp"),
        ),
    ];
    let refusal = |feature: &str| format!("this ingest was built without the `{feature}` feature");
    for (args, feature, built_with) in cases {
        match resolve(args) {
            Err(Error::Config(why)) if !built_with => {
                assert!(why.contains(&refusal(feature)), "{args:?}: {why}");
                assert!(!why.contains("hunter2"), "{args:?} echoed: {why}");
            }
            Err(e) if !built_with => panic!("{args:?}: not a configuration error: {e}"),
            Ok(_) if !built_with => panic!("{args:?} accepted without the `{feature}` feature"),
            Err(e) => assert!(!e.to_string().contains(&refusal(feature)), "{args:?}: {e}"),
            Ok(_) => {}
        }
    }
}
