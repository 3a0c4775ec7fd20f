//! das-processor: the Firehose transformation Lambda (`bootstrap` in the deployed zip).
//!
//! This build carries the decoding library only; the Lambda runtime handler and the local
//! `--event FILE` mode land with issue 3. Until then the binary says so and fails, rather than
//! pretending to process records.

use std::process::ExitCode;

const USAGE: &str =
    "das-processor: decrypts, classifies and stores Database Activity Stream records \
(the Firehose transformation Lambda of das-setup).

Usage: das-processor --event FILE   (not implemented in this build yet: issue 3)";

fn main() -> ExitCode {
    let help = std::env::args().skip(1).any(|a| a == "--help" || a == "-h");
    if help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    eprintln!("{USAGE}\n\nerror: the Lambda handler is not implemented in this build yet");
    ExitCode::from(1)
}
