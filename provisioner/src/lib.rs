//! das-setup's library: everything but argument parsing and exit codes (`main.rs`).
//!
//! Data flows one way: arguments -> validated settings -> `naming` (deterministic names, tags)
//! -> `policy` (IAM documents rendered from `policies/`) -> observed state -> plan -> apply ->
//! report. Pure: `settings`, `naming`, `policy`, `desired`, `plan`, `package`. AWS: `aws` (clients and
//! the error type), `observe` (reads only), `apply` (writes only what the plan lists), `up`.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod desired;
pub mod naming;
pub mod observe;
pub mod package;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod settings;
pub mod up;
