//! das-setup: parse, dispatch, map the outcome to an exit code. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser as _;

use das_setup::cli::{Cli, Command};
use das_setup::up;

/// Exit code for a command that failed (clap uses 2 for usage errors).
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("das-setup: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(async {
        let work = async {
            match &cli.command {
                Command::Up(args) => up::run(&cli.global, args).await,
                Command::Down(_) => not_yet("down", 6),
                Command::Status(_) => not_yet("status", 6),
            }
        };
        tokio::select! {
            code = work => code,
            _ = tokio::signal::ctrl_c() => {
                eprintln!(
                    "\ndas-setup: interrupted. What was done stays in place; running the same command again converges."
                );
                up::EXIT_INTERRUPTED
            }
        }
    });
    ExitCode::from(code)
}

fn not_yet(name: &str, issue: u32) -> u8 {
    eprintln!(
        "das-setup {name}: not implemented in this build yet (tracked in issue {issue}); nothing was changed"
    );
    EXIT_FAILURE
}
