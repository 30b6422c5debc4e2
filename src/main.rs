//! The `ingest` binary: parse arguments, set up logging, call the library, map the outcome to
//! an exit code (0 all good, 1 ran but some files failed, 2 could not run, 101 a bug in ingest:
//! `Error::exit_code`).

use ingest::cli::{dispatch, Cli, LogFormat};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::from_argv(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Err(e) = init_logging(cli.global.log_format, cli.global.log_file.as_deref()) {
        eprintln!("ingest: {e}");
        return ExitCode::from(2);
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ingest: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs to stderr, or appended to `file` (`--log-file`).
fn init_logging(format: LogFormat, file: Option<&Path>) -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env()
        // The SMB client logs every connect and tree connect at INFO: ours say what matters.
        .unwrap_or_else(|_| EnvFilter::new("info,smb2=warn"));
    let (writer, ansi) = match file {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            (BoxMakeWriter::new(Mutex::new(log)), false)
        }
        // Colours only on a terminal: a journal or a log file gets plain text.
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
