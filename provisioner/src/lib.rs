//! das-setup's library: everything but argument parsing and exit codes (`main.rs`).
//!
//! Data flows one way: arguments -> validated settings -> `naming` (deterministic names, tags)
//! -> `policy` (IAM documents rendered from `policies/`) -> observed state -> plan -> apply ->
//! report. This build has the pure stages for issue 5; the AWS side follows.

pub mod cli;
pub mod naming;
pub mod package;
pub mod policy;
pub mod settings;
