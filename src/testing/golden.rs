//! Golden text files: what a command prints, kept in the repository and compared byte for
//! byte, so a renamed field or a moved column fails a test before a downstream script meets it.

use std::path::Path;

/// Asserts that `actual` is the file at `rel` (from the crate root). `INGEST_WRITE_GOLDEN=reports`
/// writes it instead: only when the output is meant to change, and the diff is then reviewed.
pub fn assert_golden(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var("INGEST_WRITE_GOLDEN").as_deref() == Ok("reports") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let golden =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        golden == actual,
        "{rel} differs from what is printed now:\n--- golden\n{golden}\n--- now\n{actual}"
    );
}
