//! `ingest completions SHELL` and `ingest man`: the shell completions and manual pages that
//! packages install beside the binary (`tools/release`). Generated from the same clap
//! definitions as `--help`, so they describe exactly the binary that printed them.

use super::Cli;
use crate::error::{Error, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write ingest.1 and one page per subcommand (ingest-run.1, …) into this folder instead of
    /// printing ingest.1.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` to stdout.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ingest", &mut out);
    print(&out)
}

/// Prints `ingest.1`, or writes every page into `args.dir` (created if missing).
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    let cmd = Cli::command();
    let Some(dir) = &args.dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| Error::io("cannot render the manual page", e))?;
        return print(&out);
    };
    std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::generate_to(cmd, dir))
        .map_err(|e| Error::io(format!("cannot write manual pages to {}", dir.display()), e))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to stdout; a closed pipe (`ingest man | head`) is not an error.
fn print(bytes: &[u8]) -> Result<ExitCode> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("cannot write to stdout", e))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
