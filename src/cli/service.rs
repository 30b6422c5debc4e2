//! `ingest service install|uninstall`: `ingest run` as a Windows service under the Service
//! Control Manager (SCM). `install` records the command line the SCM starts at boot,
//! `ingest --log-file LOG service run --name NAME --work-dir DIR -- RUN-OPTIONS`; `service run`
//! is that entry point: it reports to the SCM and runs the daemon until a service stop or a
//! system shutdown, which end it the way SIGTERM does on Linux (the batch in flight finished
//! and committed, exit 0). Other platforms refuse these commands (Linux: systemd, with
//! `packaging/ingest.service`).

use super::{Cli, Command, GlobalArgs, Resolved};
use crate::error::{Error, Result};
use clap::{Args, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The service name when `--name` is not given.
pub const DEFAULT_NAME: &str = "ingest";

#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub action: ServiceAction,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ServiceAction {
    /// Register `ingest run` as a service that starts with Windows. Its options, global ones
    /// included (e.g. `--config C:\ingest\ingest.toml`), go after `--`; relative paths are
    /// taken from the current folder. The service logs to --log-file [default:
    /// ingest-service.log in the current folder].
    Install {
        /// Service name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// Options of `ingest run`, after `--`.
        #[arg(last = true)]
        run_args: Vec<OsString>,
    },
    /// Stop the service and remove it.
    Uninstall {
        /// Service name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// The entry point the Service Control Manager starts; not for use from a console.
    #[command(hide = true)]
    Run {
        #[arg(long)]
        name: String,
        /// Folder that relative paths in the options are taken from (a service starts in
        /// C:\Windows\System32).
        #[arg(long)]
        work_dir: PathBuf,
        #[arg(last = true)]
        run_args: Vec<OsString>,
    },
}

/// Runs one `ingest service` action.
pub fn run(global: &GlobalArgs, args: &ServiceArgs) -> Result<ExitCode> {
    match &args.action {
        ServiceAction::Install { name, run_args } => {
            if global.origins.get("config") == Some(super::Origin::Flag) {
                // Only what follows `--` is what the service runs with.
                return Err(Error::Config(
                    "--config before `service install` would not reach the service: put it \
                     after `--` (ingest service install -- --config FILE)"
                        .into(),
                ));
            }
            daemon_args(run_args)?;
            let here =
                std::env::current_dir().map_err(|e| Error::io("finding the current folder", e))?;
            let log = here.join(
                global
                    .log_file
                    .as_deref()
                    .unwrap_or(Path::new("ingest-service.log")),
            );
            platform::install(name, launch_arguments(name, &here, &log, run_args))?;
            println!(
                "installed service `{name}` (starts with Windows; logs to {}); start it now \
                 with: sc start {name}",
                log.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ServiceAction::Uninstall { name } => {
            platform::uninstall(name)?;
            println!("removed service `{name}`");
            Ok(ExitCode::SUCCESS)
        }
        ServiceAction::Run {
            name,
            work_dir,
            run_args,
        } => {
            // A folder or configuration that is refused still goes through the SCM: the
            // service reports Stopped with the exit code and its log says why. Exiting before
            // the SCM hears from it would look like a crash, restarted every minute.
            let daemon = std::env::set_current_dir(work_dir)
                .map_err(|e| Error::io(format!("entering {}", work_dir.display()), e))
                .and_then(|()| daemon_args(run_args))
                .map_err(|e| Refused {
                    why: e.to_string(),
                    code: e.exit_code(),
                });
            platform::serve(name, daemon)
        }
    }
}

/// Why `service run` cannot run the daemon, and the exit code it reports to the SCM (read by
/// the Windows side only: elsewhere `service run` is refused before it gets that far).
#[derive(Debug)]
#[cfg_attr(not(windows), allow(dead_code))]
pub struct Refused {
    why: String,
    code: u8,
}

/// What `service run` hands the SCM's thread: the daemon's settings, or why there are none.
type Daemon = std::result::Result<(Resolved, super::run::RunArgs), Refused>;

/// The command line the SCM starts: logging to `log`, paths relative to `work_dir`.
pub fn launch_arguments(
    name: &str,
    work_dir: &Path,
    log: &Path,
    run_args: &[OsString],
) -> Vec<OsString> {
    let head = [
        "--log-file".into(),
        log.into(),
        "service".into(),
        "run".into(),
        "--name".into(),
        name.into(),
        "--work-dir".into(),
        work_dir.into(),
        "--".into(),
    ];
    head.into_iter().chain(run_args.iter().cloned()).collect()
}

/// `run_args` read as `ingest run RUN-ARGS`; refused (exit 2) when they do not parse or would
/// not keep running (`--once`, `--scan`).
fn daemon_args(run_args: &[OsString]) -> Result<(Resolved, super::run::RunArgs)> {
    let argv = ["ingest".into(), "run".into()]
        .into_iter()
        .chain(run_args.iter().cloned());
    let cli = Cli::from_argv::<_, OsString>(argv)
        .map_err(|e| Error::Config(format!("options for `ingest run`: {e}")))?;
    let Command::Run(run) = cli.command else {
        return Err(Error::Config("expected options for `ingest run`".into()));
    };
    if run.once || run.scan {
        return Err(Error::Config(
            "a service keeps running: leave out --once and --scan".into(),
        ));
    }
    let cfg = cli.global.resolve()?;
    let run = cfg.run_args(&run)?;
    Ok((cfg, run))
}

#[cfg(windows)]
mod platform {
    //! The SCM side, with the `windows-service` crate.

    use super::super::run::run_until;
    use super::{Daemon, Refused};
    use crate::daemon::StopOn;
    use crate::error::{Error, Result};
    use std::ffi::OsString;
    use std::process::ExitCode;
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};
    use tokio::sync::Notify;
    use windows_service::service::{
        Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceControl,
        ServiceControlAccept, ServiceErrorControl, ServiceExitCode, ServiceFailureActions,
        ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus,
        ServiceType,
    };
    use windows_service::service_control_handler::{
        self, ServiceControlHandlerResult, ServiceStatusHandle,
    };
    use windows_service::service_dispatcher;
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    /// What `service_main` runs: the SCM calls it with no way to pass Rust values.
    struct Launch {
        name: String,
        daemon: Daemon,
    }

    static LAUNCH: OnceLock<Launch> = OnceLock::new();

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Hands the process to the SCM, which calls `service_main` on its own thread; returns when
    /// the service has stopped.
    pub fn serve(name: &str, daemon: Daemon) -> Result<ExitCode> {
        let launch = Launch {
            name: name.to_owned(),
            daemon,
        };
        if LAUNCH.set(launch).is_err() {
            return Err(Error::Config("the service is already running".into()));
        }
        service_dispatcher::start(name, ffi_service_main).map_err(|e| {
            scm_error(
                "not started by the Service Control Manager (use `ingest service install`, \
                 then `sc start`)",
                e,
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }

    fn service_main(_arguments: Vec<OsString>) {
        let Some(launch) = LAUNCH.get() else { return };
        if let Err(e) = serve_until_stopped(launch) {
            tracing::error!("service: {e}");
        }
    }

    /// Reports Running, runs the daemon until a stop control (StopPending meanwhile), reports
    /// Stopped.
    fn serve_until_stopped(launch: &Launch) -> windows_service::Result<()> {
        let stop = Arc::new(Notify::new());
        let notify = stop.clone();
        // The handler reports StopPending itself: a stop waits for the batch in flight, and
        // until then `sc query` says STOP_PENDING and a `net start` is told to wait, instead of
        // seeing a service still RUNNING after it was asked to stop. Reported before the daemon
        // is woken, so it cannot overwrite the Stopped the daemon's end reports.
        let handle = Arc::new(OnceLock::<ServiceStatusHandle>::new());
        let reporter = handle.clone();
        let status = service_control_handler::register(&launch.name, move |control| {
            if let (true, Some(status)) = (stops(control), reporter.get()) {
                let _ = status.set_service_status(status_of(ServiceState::StopPending, 0));
            }
            on_control(control, &notify)
        })?;
        let _ = handle.set(status);
        status.set_service_status(status_of(ServiceState::Running, 0))?;
        tracing::info!(service = %launch.name, "service started");
        let code = match &launch.daemon {
            Ok((cfg, args)) => match run_until(cfg, args, StopOn::Service(stop)) {
                Ok(_) => 0,
                Err(e) => {
                    tracing::error!("service: {e}");
                    u32::from(e.exit_code())
                }
            },
            Err(Refused { why, code }) => {
                tracing::error!("service: {why}");
                u32::from(*code)
            }
        };
        tracing::info!(service = %launch.name, "service stopped");
        status.set_service_status(status_of(ServiceState::Stopped, code))
    }

    /// A stop or a system shutdown ends the daemon like SIGTERM; the rest is not handled.
    pub(super) fn on_control(
        control: ServiceControl,
        stop: &Notify,
    ) -> ServiceControlHandlerResult {
        match control {
            _ if stops(control) => {
                // `notify_one` keeps the wake-up if the daemon is not waiting yet.
                stop.notify_one();
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    }

    fn stops(control: ServiceControl) -> bool {
        matches!(
            control,
            ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown
        )
    }

    fn status_of(state: ServiceState, code: u32) -> ServiceStatus {
        let accepted = match state {
            ServiceState::Running => ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
            _ => ServiceControlAccept::empty(),
        };
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accepted,
            exit_code: match code {
                0 => ServiceExitCode::Win32(0),
                n => ServiceExitCode::ServiceSpecific(n),
            },
            checkpoint: u32::from(state == ServiceState::StopPending),
            // The batch in flight is finished first; the SCM's callers wait this long before
            // they look again.
            wait_hint: match state {
                ServiceState::StopPending => Duration::from_secs(30),
                _ => Duration::default(),
            },
            process_id: None,
        }
    }

    /// Registers this executable as an automatic-start service running as LocalSystem.
    pub fn install(name: &str, launch_arguments: Vec<OsString>) -> Result<()> {
        let access = ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE;
        let manager = ServiceManager::local_computer(None::<&str>, access)
            .map_err(|e| scm_error("connecting to the Service Control Manager", e))?;
        let exe = std::env::current_exe().map_err(|e| Error::io("finding ingest.exe", e))?;
        let info = ServiceInfo {
            name: name.into(),
            display_name: format!("ingest ({name}): sensor files into Bronze").into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe,
            launch_arguments,
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        // START: the SCM asks for it on a handle that sets restart actions.
        let access = ServiceAccess::CHANGE_CONFIG | ServiceAccess::START;
        let service = manager
            .create_service(&info, access)
            .map_err(|e| scm_error(&format!("creating service `{name}`"), e))?;
        restart_after_a_crash(&service);
        service
            .set_description("Copies sensor files from the share into Bronze (ingest run).")
            .map_err(|e| scm_error("describing the service", e))
    }

    /// Recovery, as the MSI sets it too: a process that dies without reporting Stopped (a
    /// crash, a kill) is started again after 10 s, 10 s, then 60 s, the count reset after a
    /// day without one. A stop with an exit code (2: the configuration refused) is not a
    /// crash and is not restarted, as systemd's `RestartPreventExitStatus=2`. A system that
    /// refuses the setting gets a warning: the service works without it.
    fn restart_after_a_crash(service: &Service) {
        let restart = |secs| ServiceAction {
            action_type: ServiceActionType::Restart,
            delay: Duration::from_secs(secs),
        };
        let actions = ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(10), restart(10), restart(60)]),
        };
        if let Err(e) = service.update_failure_actions(actions) {
            tracing::warn!("the service is not set to restart after a crash: {e}");
        }
    }

    /// Stops the service if it runs (waiting up to a minute for its batch), then deletes it.
    pub fn uninstall(name: &str) -> Result<()> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| scm_error("connecting to the Service Control Manager", e))?;
        let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
        let service = manager
            .open_service(name, access)
            .map_err(|e| scm_error(&format!("opening service `{name}`"), e))?;
        let state = |s: &windows_service::service::Service| {
            s.query_status()
                .map(|st| st.current_state)
                .map_err(|e| scm_error("asking the service's state", e))
        };
        if state(&service)? != ServiceState::Stopped {
            service
                .stop()
                .map_err(|e| scm_error(&format!("stopping service `{name}`"), e))?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while state(&service)? != ServiceState::Stopped && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        service
            .delete()
            .map_err(|e| scm_error(&format!("deleting service `{name}`"), e))
    }

    fn scm_error(what: &str, e: windows_service::Error) -> Error {
        match e {
            windows_service::Error::Winapi(io) => Error::io(what, io),
            other => Error::Config(format!("{what}: {other}")),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A service stop and a system shutdown both wake the daemon's shutdown future (the
        /// SIGTERM path); other controls are declined and wake nothing.
        #[test]
        fn stop_and_shutdown_controls_stop_the_daemon() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for control in [ServiceControl::Stop, ServiceControl::Shutdown] {
                let stop = Notify::new();
                let handled = on_control(control, &stop);
                assert!(matches!(handled, ServiceControlHandlerResult::NoError));
                let woke = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(1), stop.notified()).await
                });
                assert!(woke.is_ok(), "{control:?} did not stop the daemon");
            }
            let stop = Notify::new();
            let handled = on_control(ServiceControl::Pause, &stop);
            assert!(matches!(
                handled,
                ServiceControlHandlerResult::NotImplemented
            ));
            let woke = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), stop.notified()).await
            });
            assert!(woke.is_err(), "a pause must not stop the daemon");
        }
    }
}

#[cfg(not(windows))]
mod platform {
    //! Services are a Windows thing; systemd runs `ingest run` on Linux.

    use crate::error::{Error, Result};
    use std::ffi::OsString;
    use std::process::ExitCode;

    fn refuse() -> Error {
        Error::Config(
            "`ingest service` manages a Windows service; elsewhere run `ingest run` under the \
             system's service manager (systemd: packaging/ingest.service, installed by the .deb)"
                .into(),
        )
    }

    pub fn install(_name: &str, _launch_arguments: Vec<OsString>) -> Result<()> {
        Err(refuse())
    }

    pub fn uninstall(_name: &str) -> Result<()> {
        Err(refuse())
    }

    pub fn serve(_name: &str, _daemon: super::Daemon) -> Result<ExitCode> {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `install` records parses back into `service run` with the same name, folder and
    /// daemon options, and the log file as a global option.
    #[test]
    fn launch_arguments_parse_back_into_service_run() {
        let run_args: Vec<OsString> = [
            "--smb-path",
            r"\\server\share\sensors",
            "--interval-secs",
            "30",
        ]
        .map(OsString::from)
        .into();
        let work = Path::new("work dir");
        let log = Path::new("work dir/ingest-service.log");
        let argv = std::iter::once(OsString::from("ingest")).chain(launch_arguments(
            "ingest-test",
            work,
            log,
            &run_args,
        ));
        let cli = Cli::from_argv(argv).unwrap();
        assert_eq!(cli.global.log_file.as_deref(), Some(log));
        let Command::Service(ServiceArgs {
            action:
                ServiceAction::Run {
                    name,
                    work_dir,
                    run_args: parsed,
                },
        }) = cli.command
        else {
            panic!("not `service run`: {:?}", cli.command);
        };
        assert_eq!((name.as_str(), work_dir.as_path()), ("ingest-test", work));
        assert_eq!(parsed, run_args);
        let (cfg, run) = daemon_args(&parsed).unwrap();
        assert_eq!(
            cfg.smb_path.as_deref(),
            Some(Path::new(r"\\server\share\sensors"))
        );
        assert_eq!(run.interval_secs, 30.0);
    }

    /// Options a service cannot run with are refused at install time, not at boot.
    #[test]
    fn install_refuses_one_shot_and_unknown_options() {
        for bad in [&["--once"][..], &["--scan"], &["--no-such-option"]] {
            let args: Vec<OsString> = bad.iter().map(OsString::from).collect();
            assert!(daemon_args(&args).is_err(), "{bad:?} accepted");
        }
    }
}
