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

use crate::cli::{Arch, GlobalArgs, OutputFormat, PackageArgs};
use crate::desired::arch_name;
use crate::progress::{Progress, Step};

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

/// The Rust target for a Lambda architecture: musl, statically linked, so the binary needs
/// nothing from the runtime's image and the linker is the `rust-lld` that ships with Rust (no C
/// toolchain for the target; the processor has no C dependency, processor/src/https.rs).
pub fn target_triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-musl",
        Arch::Arm64 => "aarch64-unknown-linux-musl",
    }
}

/// The cargo profile of the Lambda build (Cargo.toml: fat LTO, one codegen unit, size-optimized
/// SDK), kept apart from `release` so that `cargo install` of das-setup stays quick.
pub const PROFILE: &str = "lambda";

/// Where the processor's source paths appear in the binary (panic locations): the same on every
/// machine, so the same source and toolchain give the same bytes, and no local path is shipped.
const REMAPPED_WORKSPACE: &str = "/das-setup";
const REMAPPED_CARGO_HOME: &str = "/cargo";

/// `cargo build --profile lambda -p das-processor --target <musl triple>`, linked with
/// `rust-lld`, with machine paths remapped (reproducible builds).
pub fn build_command(arch: Arch, workspace: &Path, cargo_home: &Path) -> Command {
    let target = target_triple(arch);
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace).args([
        "build",
        "--profile",
        PROFILE,
        "--locked",
        "-p",
        "das-processor",
        "--target",
        target,
    ]);
    let env_target = target.to_uppercase().replace('-', "_");
    cmd.env(format!("CARGO_TARGET_{env_target}_LINKER"), "rust-lld");
    // CARGO_ENCODED_RUSTFLAGS (flags separated by 0x1f) takes precedence over RUSTFLAGS and the
    // user's config, so what is built does not depend on them.
    let flags = [
        format!(
            "--remap-path-prefix={}={REMAPPED_WORKSPACE}",
            workspace.display()
        ),
        format!(
            "--remap-path-prefix={}={REMAPPED_CARGO_HOME}",
            cargo_home.display()
        ),
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    cmd
}

/// `$CARGO_HOME`, or `~/.cargo` as cargo defaults it.
fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// Lines of the build log shown when the build fails.
const LOG_TAIL_LINES: usize = 25;

/// What [`build`] reports while it works, for the caller's progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `rustup target add`: the target's standard library was not installed.
    InstallingTarget,
    Compiling,
    /// Still at it (about five times a second).
    Tick,
}

/// Builds the processor and returns the binary's path. The compiler's output goes to
/// `target/das-setup/build-<target>.log` (the caller shows progress instead); on failure the
/// error carries the log's last lines and its path. A missing target standard library is
/// installed with `rustup target add` first, when rustup manages the toolchain.
pub fn build(
    arch: Arch,
    workspace: &Path,
    stage: &mut dyn FnMut(Stage),
) -> Result<PathBuf, PackageError> {
    let target = target_triple(arch);
    let log_dir = workspace.join("target").join("das-setup");
    std::fs::create_dir_all(&log_dir)?;
    let log_path = log_dir.join(format!("build-{target}.log"));
    let log = std::fs::File::create(&log_path)?;
    if !target_installed(workspace, target) {
        stage(Stage::InstallingTarget);
        let mut rustup = Command::new("rustup");
        rustup
            .current_dir(workspace)
            .args(["target", "add", target]);
        run_logged(rustup, &log, &log_path, target, stage).map_err(|e| match e {
            PackageError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                PackageError::Invalid(format!(
                    "the Rust standard library for {target} is not installed and rustup is not on PATH to install it: \
                     install it for this toolchain (rustup target add {target}), or pass --lambda-zip"
                ))
            }
            other => other,
        })?;
    }
    stage(Stage::Compiling);
    run_logged(
        build_command(arch, workspace, &cargo_home()),
        &log,
        &log_path,
        target,
        stage,
    )?;
    Ok(workspace
        .join("target")
        .join(target)
        .join(PROFILE)
        .join("das-processor"))
}

/// Whether the toolchain that builds in `workspace` has `target`'s standard library.
fn target_installed(workspace: &Path, target: &str) -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .current_dir(workspace)
        .args(["--print", "target-libdir", "--target", target])
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = libdir else { return false };
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    out.status.success()
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
}

/// Runs `cmd` with its output appended to the build log; a failure carries the log's end.
fn run_logged(
    mut cmd: Command,
    log: &std::fs::File,
    log_path: &Path,
    target: &'static str,
    stage: &mut dyn FnMut(Stage),
) -> Result<(), PackageError> {
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    let mut child = cmd.spawn()?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        stage(Stage::Tick);
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    Err(PackageError::Build {
        target,
        status: status.to_string(),
        command: format!("{cmd:?}"),
        log: log_path.display().to_string(),
        tail: last_lines(&text, LOG_TAIL_LINES),
    })
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

/// The zip with one more file at its root (replacing one of that name), the other entries
/// copied as they are: the same input gives the same bytes. `up --alert-rules` puts the rules
/// beside `bootstrap` this way (Lambda's environment holds 4 KB at most; a rule set can be
/// larger).
pub fn with_file(zip: &[u8], name: &str, contents: &[u8]) -> Result<Vec<u8>, PackageError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip))?;
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i)?;
        if entry.name().map_err(PackageError::Zip)? != name {
            out.raw_copy_file(entry)?;
        }
    }
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .unix_permissions(0o644)
        .last_modified_time(zip::DateTime::default());
    out.start_file(name, options)?;
    out.write_all(contents)?;
    Ok(out.finish()?.into_inner())
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

/// The processor zips a release build of das-setup carries (provisioner/build.rs embeds them when
/// `DAS_SETUP_EMBED_PROCESSOR` names a folder holding them; empty otherwise).
const EMBEDDED_ARM64: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/das-processor-arm64.zip"));
const EMBEDDED_X86_64: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/das-processor-x86_64.zip"));

/// The processor zip this das-setup carries for `arch`, if it is a release build.
pub fn embedded(arch: Arch) -> Option<&'static [u8]> {
    let zip = match arch {
        Arch::Arm64 => EMBEDDED_ARM64,
        Arch::X86_64 => EMBEDDED_X86_64,
    };
    (!zip.is_empty()).then_some(zip)
}

/// The file name of an architecture's zip, as releases and `SHA256SUMS` name it.
pub fn zip_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "das-processor-arm64.zip",
        Arch::X86_64 => "das-processor-x86_64.zip",
    }
}

/// Where the zip `up` deploys came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Carried by this das-setup (a release build).
    Embedded,
    /// Built from the source tree just now.
    Built,
}

/// The zip `up` deploys when not given `--lambda-zip`: the one this das-setup carries, else one
/// built from the source tree it was built from (`rebuild`: build even when one is carried).
pub fn processor_zip(
    arch: Arch,
    rebuild: bool,
    progress: &Progress,
) -> Result<(Vec<u8>, Origin), PackageError> {
    if !rebuild && let Some(zip) = embedded(arch) {
        return Ok((zip.to_vec(), Origin::Embedded));
    }
    let workspace = source_tree().ok_or_else(|| {
        PackageError::Invalid(
            "this das-setup carries no processor zip (it is not a release build) and its source tree is gone, \
             so it cannot build one: install a release (README, \"Install\"), reinstall with \
             `cargo install --locked --path provisioner` from a checkout and keep the checkout, or pass --lambda-zip"
                .into(),
        )
    })?;
    let arch_word = arch_name(arch);
    let mut step: Option<Step> = None;
    let binary = build(arch, &workspace, &mut |stage| match stage {
        Stage::InstallingTarget => {
            step = Some(progress.begin(
                format!(
                    "installing Rust's standard library for {} (rustup target add)",
                    target_triple(arch)
                ),
                true,
            ));
        }
        Stage::Compiling => {
            if let Some(done) = step.take() {
                done.done(&format!(
                    "installed the Rust target {}",
                    target_triple(arch)
                ));
            }
            step = Some(progress.begin(
                format!(
                    "building the processor for {arch_word} (cargo build, log in target/das-setup/)"
                ),
                true,
            ));
        }
        Stage::Tick => {
            if let Some(step) = &mut step {
                step.tick();
            }
        }
    })?;
    let bytes = std::fs::read(&binary)
        .map_err(|e| PackageError::Invalid(format!("{}: {e}", binary.display())))?;
    check_glibc(&binary, &bytes)?;
    let zip = zip_bootstrap(&bytes)?;
    if let Some(step) = step {
        step.done(&format!(
            "built the processor for {arch_word} ({:.2} MB zipped)",
            zip.len() as f64 / 1e6
        ));
    }
    Ok((zip, Origin::Built))
}

/// The workspace this binary was built from, if it is still there.
pub fn source_tree() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("processor")
        .join("Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

/// `das-setup package --arch A --output FILE`: writes the zip `up` would deploy. Exit 0, or 1
/// with the reason.
pub fn run(global: &GlobalArgs, args: &PackageArgs) -> u8 {
    let progress = Progress::new(false);
    let result = (|| {
        let OutputFormat::File(path) = &global.output else {
            return Err(format!(
                "package writes a file: name it with --output, e.g. --output {}",
                zip_name(args.arch)
            ));
        };
        let (zip, origin) =
            processor_zip(args.arch, args.rebuild, &progress).map_err(|e| e.to_string())?;
        let what = match origin {
            Origin::Embedded => "the carried zip",
            Origin::Built => "the built zip",
        };
        check_arch(&zip, args.arch, what)?;
        std::fs::write(path, &zip).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((path.clone(), zip, origin))
    })();
    progress.finish();
    match result {
        Ok((path, zip, origin)) => {
            crate::outln!(
                "{}  {}\n  {} bytes, {}, CodeSha256 {}",
                hex_sha256(&zip),
                path.display(),
                zip.len(),
                match origin {
                    Origin::Embedded => "the zip this das-setup carries",
                    Origin::Built => "built from the source tree",
                },
                code_sha256(&zip)
            );
            0
        }
        Err(e) => {
            crate::errln!("das-setup package: {e}");
            1
        }
    }
}

/// Refuses a zip whose `bootstrap` is built for another architecture than the function's (`what`
/// names the zip in the message). A zip with a script `bootstrap` passes: Lambda can run it.
pub fn check_arch(zip: &[u8], arch: Arch, what: &str) -> Result<(), String> {
    match bootstrap_arch(zip) {
        Ok(Some(built)) if built != arch => Err(format!(
            "{what}: bootstrap is built for {}, but the function's architecture is {}; pass --arch {}",
            arch_name(built),
            arch_name(arch),
            arch_name(built)
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// The SHA-256 of a zip in hex, as `sha256sum` and `SHA256SUMS` print it.
pub fn hex_sha256(zip: &[u8]) -> String {
    Sha256::digest(zip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
        let log_path = dir.join("build.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // No Cargo.toml here: cargo fails at once, saying so.
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&dir).arg("build");
        let e = run_logged(
            cmd,
            &log,
            &log_path,
            "x86_64-unknown-linux-musl",
            &mut |_| {},
        )
        .unwrap_err();
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

        let arm = zip_bootstrap(&elf(183)).unwrap();
        assert_eq!(check_arch(&arm, Arch::Arm64, "z"), Ok(()));
        assert_eq!(
            check_arch(&arm, Arch::X86_64, "the zip"),
            Err("the zip: bootstrap is built for arm64, but the function's architecture is x86_64; pass --arch arm64".into())
        );
        let script = zip_bootstrap(b"#!/bin/sh\n").unwrap();
        assert_eq!(check_arch(&script, Arch::X86_64, "z"), Ok(()));
        assert!(
            check_arch(b"not a zip", Arch::Arm64, "z")
                .unwrap_err()
                .starts_with("z: ")
        );
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
    fn the_long_version_names_the_processor_builds_carried() {
        use clap::CommandFactory as _;
        let text = crate::cli::Cli::command().render_long_version();
        assert!(
            text.starts_with(&format!("das-setup {}", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.contains("processor"), "{text}");
        for arch in [Arch::Arm64, Arch::X86_64] {
            if let Some(zip) = embedded(arch) {
                assert!(text.contains(&hex_sha256(zip)), "{text}");
            }
        }
    }

    #[test]
    fn lambda_builds_are_musl_linked_by_rust_lld_with_machine_paths_remapped() {
        for (arch, target, linker) in [
            (
                Arch::Arm64,
                "aarch64-unknown-linux-musl",
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER",
            ),
            (
                Arch::X86_64,
                "x86_64-unknown-linux-musl",
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER",
            ),
        ] {
            let cmd = build_command(arch, Path::new("/src/tree"), Path::new("/home/u/.cargo"));
            let args: Vec<_> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert!(args.ends_with(&["--target".to_owned(), target.to_owned()]));
            assert!(
                args.windows(2).any(|w| w == ["--profile", PROFILE]),
                "{args:?}"
            );
            let env = |name: &str| {
                cmd.get_envs()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| v)
                    .map(|v| v.to_string_lossy().into_owned())
            };
            assert_eq!(env(linker).as_deref(), Some("rust-lld"));
            let flags = env("CARGO_ENCODED_RUSTFLAGS").unwrap();
            let flags: Vec<&str> = flags.split('\x1f').collect();
            assert_eq!(
                flags,
                [
                    "--remap-path-prefix=/src/tree=/das-setup",
                    "--remap-path-prefix=/home/u/.cargo=/cargo"
                ]
            );
        }
    }
}
