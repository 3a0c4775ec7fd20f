//! The processor as Lambda wants it: a zip holding one executable named `bootstrap` (mode 0755),
//! for runtime `provided.al2023`. The zip is deterministic (fixed timestamp, fixed order and
//! level), so the same binary always gives the same `CodeSha256` and `up` can tell whether the
//! deployed code is current without uploading it.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::cli::Arch;

/// Amazon Linux 2023's glibc: a binary that needs a newer symbol would not start in Lambda.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("zipping the processor: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("zipping the processor: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "building the processor for {target} failed ({status}); the build log ends with:\n{tail}\nthe whole log: {log}\nthe command was: {command}"
    )]
    Build {
        target: &'static str,
        status: String,
        command: String,
        log: String,
        tail: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{path} needs GLIBC_{found}, newer than Amazon Linux 2023's GLIBC_2.34: build on an older distribution or for musl"
    )]
    Glibc { path: String, found: String },
}

/// The Rust target for a Lambda architecture.
pub fn target_triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-gnu",
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// `cargo build --release -p das-processor --target <triple>`, with the cross linker and C
/// compiler for arm64 on another host (Debian: `gcc-aarch64-linux-gnu`).
pub fn build_command(arch: Arch, workspace: &Path, host_is_aarch64: bool) -> Command {
    let target = target_triple(arch);
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "das-processor",
        "--target",
        target,
    ]);
    if arch == Arch::Arm64 && !host_is_aarch64 {
        cmd.env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc",
        )
        .env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc");
    }
    cmd
}

/// Lines of the build log shown when the build fails.
const LOG_TAIL_LINES: usize = 25;

/// Builds the processor and returns the binary's path. The compiler's output goes to
/// `target/das-setup/build-<target>.log` (the caller shows progress instead); on failure the
/// error carries the log's last lines and its path.
pub fn build(arch: Arch, workspace: &Path) -> Result<PathBuf, PackageError> {
    let mut cmd = build_command(arch, workspace, cfg!(target_arch = "aarch64"));
    let target = target_triple(arch);
    let log_dir = workspace.join("target").join("das-setup");
    std::fs::create_dir_all(&log_dir)?;
    let log_path = log_dir.join(format!("build-{target}.log"));
    let log = std::fs::File::create(&log_path)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = cmd.status()?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(PackageError::Build {
            target,
            status: status.to_string(),
            command: format!("{cmd:?}"),
            log: log_path.display().to_string(),
            tail: last_lines(&text, LOG_TAIL_LINES),
        });
    }
    Ok(workspace
        .join("target")
        .join(target)
        .join("release")
        .join("das-processor"))
}

/// The last `n` lines of a log, indented.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The newest `GLIBC_x.y` symbol version a binary references, if any.
pub fn max_glibc(binary: &[u8]) -> Option<(u32, u32)> {
    let needle = b"GLIBC_";
    let mut best = None;
    let mut i = 0;
    while let Some(pos) = binary[i..].windows(needle.len()).position(|w| w == needle) {
        let start = i + pos + needle.len();
        let digits: Vec<u8> = binary[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .copied()
            .collect();
        let text = String::from_utf8_lossy(&digits);
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            best = best.max(Some((major, minor)));
        }
        i = start;
    }
    best
}

/// Refuses a binary Amazon Linux 2023 could not start.
pub fn check_glibc(path: &Path, binary: &[u8]) -> Result<(), PackageError> {
    match max_glibc(binary) {
        Some(found) if found > MAX_GLIBC => Err(PackageError::Glibc {
            path: path.display().to_string(),
            found: format!("{}.{}", found.0, found.1),
        }),
        _ => Ok(()),
    }
}

/// The Lambda zip of one `bootstrap` executable, byte-for-byte the same for the same binary.
pub fn zip_bootstrap(binary: &[u8]) -> Result<Vec<u8>, PackageError> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .unix_permissions(0o755)
        .last_modified_time(zip::DateTime::default());
    zip.start_file("bootstrap", options)?;
    zip.write_all(binary)?;
    Ok(zip.finish()?.into_inner())
}

/// What a Lambda zip's `bootstrap` is built for: `Ok(Some(arch))` for an ELF executable,
/// `Ok(None)` for anything else Lambda can run (a script); an error when there is no executable
/// `bootstrap` at the zip's root.
pub fn bootstrap_arch(zip: &[u8]) -> Result<Option<Arch>, PackageError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip))?;
    let mut entry = archive.by_name("bootstrap").map_err(|_| {
        PackageError::Invalid("no file named bootstrap at the root of the zip".into())
    })?;
    if entry.unix_mode().is_some_and(|m| m & 0o111 == 0) {
        return Err(PackageError::Invalid(
            "bootstrap is not executable (Lambda needs mode 0755)".into(),
        ));
    }
    let mut head = [0u8; 20];
    let mut filled = 0;
    while filled < head.len() {
        let n = std::io::Read::read(&mut entry, &mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    if filled < head.len() || &head[..4] != b"\x7fELF" {
        return Ok(None);
    }
    match u16::from_le_bytes([head[18], head[19]]) {
        62 => Ok(Some(Arch::X86_64)),
        183 => Ok(Some(Arch::Arm64)),
        other => Err(PackageError::Invalid(format!(
            "bootstrap is an ELF binary for machine {other}, neither x86_64 nor arm64"
        ))),
    }
}

/// Lambda's `CodeSha256` of a zip: base64 of its SHA-256.
pub fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_failed_build_keeps_the_compiler_log_in_a_file_and_shows_its_end() {
        let dir = std::env::temp_dir().join(format!("das-setup-build-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No Cargo.toml here: cargo fails at once, saying so.
        let e = build(Arch::X86_64, &dir).unwrap_err();
        let PackageError::Build { log, tail, .. } = &e else {
            panic!("{e}");
        };
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("Cargo.toml"), "{text}");
        assert!(tail.contains("Cargo.toml"), "{tail}");
        assert!(e.to_string().contains(log.as_str()), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(last_lines("a\nb\nc", 2), "    b\n    c");
    }

    #[test]
    fn the_zip_holds_one_executable_bootstrap_and_is_deterministic() {
        let binary: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let zip = zip_bootstrap(&binary).unwrap();
        assert_eq!(zip, zip_bootstrap(&binary).unwrap());
        assert_eq!(
            code_sha256(&zip),
            code_sha256(&zip_bootstrap(&binary).unwrap())
        );
        assert_eq!(code_sha256(&zip).len(), 44);
        let mut archive = zip::ZipArchive::new(Cursor::new(&zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut back = Vec::new();
        entry.read_to_end(&mut back).unwrap();
        assert_eq!(back, binary);
        assert!(zip.len() < binary.len());
        assert_ne!(
            code_sha256(&zip),
            code_sha256(&zip_bootstrap(b"other").unwrap())
        );
    }

    #[test]
    fn the_bootstrap_says_which_architecture_it_is_for() {
        let elf = |machine: u16| {
            let mut b = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
            b.extend_from_slice(&machine.to_le_bytes());
            b.extend_from_slice(&[0; 40]);
            b
        };
        let arch = |bytes: &[u8]| bootstrap_arch(&zip_bootstrap(bytes).unwrap());
        assert_eq!(arch(&elf(62)).unwrap(), Some(Arch::X86_64));
        assert_eq!(arch(&elf(183)).unwrap(), Some(Arch::Arm64));
        assert_eq!(arch(b"#!/bin/sh\necho hi\n").unwrap(), None);
        assert!(
            arch(&elf(40))
                .unwrap_err()
                .to_string()
                .contains("machine 40")
        );
        let mut other = zip::ZipWriter::new(Cursor::new(Vec::new()));
        other
            .start_file("main", SimpleFileOptions::default())
            .unwrap();
        other.write_all(b"x").unwrap();
        let other = other.finish().unwrap().into_inner();
        assert!(
            bootstrap_arch(&other)
                .unwrap_err()
                .to_string()
                .contains("no file named bootstrap")
        );
        assert!(bootstrap_arch(b"not a zip").is_err());
    }

    #[test]
    fn glibc_ceiling() {
        let ok = b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0";
        assert_eq!(max_glibc(ok), Some((2, 34)));
        assert!(check_glibc(Path::new("x"), ok).is_ok());
        let new = b"\0GLIBC_2.28\0GLIBC_2.38\0";
        let e = check_glibc(Path::new("bootstrap"), new)
            .unwrap_err()
            .to_string();
        assert!(e.contains("GLIBC_2.38"), "{e}");
        assert_eq!(max_glibc(b"static"), None);
    }

    #[test]
    fn arm64_cross_builds_name_their_linker() {
        let cmd = build_command(Arch::Arm64, Path::new("."), false);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.ends_with(&[
            "--target".to_owned(),
            "aarch64-unknown-linux-gnu".to_owned()
        ]));
        let envs: Vec<_> = cmd
            .get_envs()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(envs.contains(&"CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".to_owned()));
        assert_eq!(
            build_command(Arch::X86_64, Path::new("."), false)
                .get_envs()
                .count(),
            0
        );
    }
}
