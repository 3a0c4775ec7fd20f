//! das-setup: parse, dispatch, map the outcome to an exit code. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser as _;

use das_setup::cli::{AlertsCommand, Cli, Command};
use das_setup::{alerts, down, package, query, replay, report, status, tail, up, verify};

/// Exit code when not even the runtime starts.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    if let Command::Package(args) = &cli.command {
        return ExitCode::from(package::run(&cli.global, args));
    }
    if let Err(e) = cli
        .global
        .format_of(matches!(cli.command, Command::Query(_)))
    {
        das_setup::errln!("das-setup: {e}");
        return ExitCode::from(up::EXIT_REFUSED);
    }
    // `query` decodes objects on every core (its engine runs on the runtime's workers); the
    // other commands wait on AWS and need one thread.
    let runtime = if matches!(cli.command, Command::Query(_) | Command::Report(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            das_setup::errln!("das-setup: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(async {
        let work = async {
            match &cli.command {
                Command::Up(args) => up::run(&cli.global, args).await,
                Command::Down(args) => down::run(&cli.global, args).await,
                Command::Status(args) => status::run(&cli.global, args).await,
                Command::Tail(args) => tail::run(&cli.global, args).await,
                Command::Verify(args) => verify::run(&cli.global, args).await,
                Command::Replay(args) => replay::run(&cli.global, args).await,
                Command::Query(args) => query::run(&cli.global, args).await,
                Command::Report(args) => report::run(&cli.global, args).await,
                Command::Package(args) => package::run(&cli.global, args),
                Command::Alerts(AlertsCommand::Test(args)) => alerts::test(&cli.global, args),
            }
        };
        tokio::select! {
            code = work => code,
            _ = tokio::signal::ctrl_c() => {
                if matches!(cli.command, Command::Tail(_) | Command::Status(_) | Command::Verify(_) | Command::Query(_) | Command::Report(_)) {
                    // Read-only commands: Ctrl-C is the normal way to stop.
                    return up::EXIT_OK;
                }
                das_setup::errln!(
                    "\ndas-setup: interrupted. What was done stays in place; running the same command again converges."
                );
                up::EXIT_INTERRUPTED
            }
        }
    });
    ExitCode::from(code)
}

/// `-v`: each AWS call as it returns; `-vv`: also the SDK's own debug log (retries, endpoints,
/// credentials). Default: neither. Never TRACE: that is the level at which the SDK logs request
/// and response bodies, and a KMS `Decrypt` response holds a plaintext data key
/// (tests/integration/test_lifecycle.py runs `tail -vv` and looks for it).
fn init_tracing(verbose: u8) {
    das_setup::aws::set_verbose(verbose >= 1);
    if verbose < 2 {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
