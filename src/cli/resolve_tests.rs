//! The config file's keys, as README "Configuration" lists them (and `--config`'s help after
//! it, tests/cli.rs), are exactly `FileConfig`'s fields: a key added to one and not the other
//! fails here, before a user finds a documented key refused or an accepted one undocumented.

use super::FileConfig;

/// The backquoted snake_case words of the paragraph that opens README "Configuration".
fn readme_config_keys() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme.split("\n## Configuration\n").nth(1).unwrap();
    let paragraph = section
        .split("\n\n")
        .find(|p| !p.trim().is_empty())
        .unwrap();
    (paragraph.split('`').skip(1).step_by(2))
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_lists_exactly_the_keys_the_config_file_takes() {
    let keys = readme_config_keys();
    let value = |key: &str| match key {
        "sftp_port" => "22",
        "streams" => "[\"JimmyLoup=jimmy\"]",
        _ => "\"x\"",
    };
    let text: String = keys
        .iter()
        .map(|k| format!("{k} = {}\n", value(k)))
        .collect();
    // Unknown fields are refused: every key README lists is one the file takes.
    let file: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // And every field is set: the file takes no key README leaves out.
    let fields = format!("{file:?}");
    assert!(
        !fields.contains("None"),
        "a key README does not list: {fields}"
    );
}
