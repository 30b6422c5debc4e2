//! The command line: global options (flags > environment > config file > defaults) and one
//! module per subcommand, each with its own `Args` and `run`. Subcommands return the exit
//! code; errors that mean "could not run" bubble up to `main` as exit 2.
//!
//! `args` is what clap parses (its doc comments are the help); `resolve` turns that into the
//! [`Resolved`] settings (config file, layering, secrets, the Source and Bronze factories);
//! `config_file` is the TOML file (its `[run]` and `[[feed]]` tables, inline secrets refused);
//! `config_cmd` is `ingest config check|show|init`; `manual` the completions and man pages;
//! `report` is what commands print; this module dispatches a parsed command to its subcommand.

mod adopt;
mod args;
mod audit;
mod config_cmd;
mod config_file;
mod demo;
mod gaps;
mod log;
mod manual;
mod replay;
mod report;
mod report_html;
mod resolve;
mod restore;
mod run;
mod service;
mod since;
mod status;

// What `main` and the subcommands use, named here so a caller need not know which file holds it.
pub use args::{Cli, Command, GlobalArgs, LogFormat, Origin, Origins, SftpArgs};
pub(crate) use report::escaped;
pub(crate) use resolve::seconds;
pub use resolve::Resolved;

use crate::error::Result;
use crate::store::damage;
use std::process::ExitCode;

/// Runs the parsed command. A damaged store ends any command with
/// [`Error::StoreDamaged`](crate::error::Error::StoreDamaged) (exit 2), not a panic.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Demo(args) => return demo::run(&cli.global, args),
        Command::Service(args) => return service::run(&cli.global, args),
        Command::Completions(args) => return manual::completions(args),
        Command::Man(args) => return manual::man(args),
        // Writes the file the configuration is read from: nothing to resolve yet.
        Command::Config(config_cmd::ConfigArgs {
            action: config_cmd::ConfigAction::Init { file },
            ..
        }) => return config_cmd::init(file),
        _ => {}
    }
    let mut cli = cli;
    if let Command::Restore(restore::RestoreArgs {
        from: Some(from), ..
    }) = &cli.command
    {
        // `--from` is the Bronze root the restored store is for: every default (the state's
        // place for a bucket) follows from it, as from --bronze-root.
        cli.global.bronze_root = Some(from.into());
    }
    let cfg = cli.global.resolve()?;
    damage::guard(&cfg.state, || match &cli.command {
        Command::Run(args) => run::run(&cfg, &cfg.run_args(args)?),
        Command::Status(args) => status::run(&cfg, args),
        Command::Log(args) => log::run(&cfg, args),
        Command::Gaps(args) => gaps::run(&cfg, args),
        Command::Report(args) => report_html::run(&cfg, args),
        Command::Audit(args) => audit::run(&cfg, args),
        Command::Replay(args) => replay::run(&cfg, args),
        Command::Adopt(args) => adopt::run(&cfg, args),
        Command::Restore(args) => restore::run(&cfg, args),
        Command::Config(args) => config_cmd::run(&cfg, args),
        // Returned above: the demo keeps its store in its own folder, not at `cfg.state`,
        // `service` only registers a command line, and the manual needs no configuration.
        Command::Demo(args) => demo::run(&cli.global, args),
        Command::Service(args) => service::run(&cli.global, args),
        Command::Completions(args) => manual::completions(args),
        Command::Man(args) => manual::man(args),
    })
}
