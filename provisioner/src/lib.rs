//! das-setup's library: everything but argument parsing and exit codes (`main.rs`).
//!
//! Data flows one way: arguments -> validated settings -> `naming` (deterministic names, tags)
//! -> `policy` (IAM documents rendered from `policies/`) -> observed state -> plan -> apply ->
//! report. Pure: `settings`, `naming`, `policy`, `desired`, `plan`, `package`. AWS: `aws` (clients and
//! the error type), `observe` (reads only), `apply` (writes only what the plan lists), `up`.

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

pub mod apply;
pub mod aws;
pub mod cli;
pub mod desired;
pub mod down;
#[cfg(test)]
mod fake_s3;
pub mod naming;
pub mod observe;
pub mod package;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod session;
pub mod settings;
pub mod status;
pub mod stored;
pub mod tail;
pub mod up;
