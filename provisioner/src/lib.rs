//! das-setup's library: everything but argument parsing and exit codes (`main.rs`).
//!
//! Data flows one way: arguments -> validated settings (`settings`, one per command) ->
//! `naming` (deterministic names, tags) -> `policy` (IAM documents rendered from `policies/`) ->
//! `desired` -> the observed deployment -> `plan` -> apply -> report.
//!
//! Each AWS resource das-setup manages is one module under `resource` (observe, compare, apply,
//! delete, status check); `engine` holds only their order and concurrency; `up`, `down`,
//! `status` and `tail` are the commands. Pure: `settings`, `naming`, `policy`, `desired`,
//! `plan`, `package` and every `compare`/`check`/`verdict`. AWS: `aws` (clients and the typed
//! error), `database`, `resource::*`, `engine`, `stored`.

/// `println!` that never panics: a closed stdout (`das-setup status | head`) is not an error.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` that never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod alerts;
pub mod aws;
pub mod cli;
pub mod database;
pub mod deployment;
pub mod desired;
pub mod down;
pub mod engine;
#[cfg(test)]
mod fake_s3;
pub mod json_api;
pub mod metrics;
pub mod naming;
pub mod package;
pub mod plan;
pub mod policy;
pub mod preflight;
pub mod progress;
pub mod query;
pub mod replay;
pub mod report;
pub mod resource;
pub mod retention;
pub mod session;
pub mod settings;
pub mod status;
pub mod stored;
pub mod tail;
pub mod up;
pub mod verify;
