//! Release builds carry the processor's Lambda zips, so that a das-setup installed anywhere
//! deploys the processor it was released with (README, "Install"). `DAS_SETUP_EMBED_PROCESSOR`
//! names a folder holding `das-processor-arm64.zip` and `das-processor-x86_64.zip`, as
//! `das-setup package` writes them (scripts/release does both steps); without it nothing is
//! embedded and `up` builds the processor from the source tree. Also makes the `--version` text:
//! the SHA-256 of each carried zip.

use std::path::{Path, PathBuf};

const ZIPS: [(&str, &str); 2] = [
    ("arm64", "das-processor-arm64.zip"),
    ("x86_64", "das-processor-x86_64.zip"),
];

fn main() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=DAS_SETUP_EMBED_PROCESSOR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR")?);
    let from = std::env::var_os("DAS_SETUP_EMBED_PROCESSOR").map(PathBuf::from);
    let mut version = env!("CARGO_PKG_VERSION").to_owned();
    for (arch, name) in ZIPS {
        let zip = match &from {
            Some(dir) => {
                let path = dir.join(name);
                println!("cargo:rerun-if-changed={}", path.display());
                let zip = std::fs::read(&path).map_err(|e| {
                    format!(
                        "DAS_SETUP_EMBED_PROCESSOR: {}: {e} (write it with `das-setup package --arch {arch} --output {}`)",
                        path.display(),
                        path.display()
                    )
                })?;
                if !zip.starts_with(b"PK\x03\x04") {
                    return Err(format!(
                        "DAS_SETUP_EMBED_PROCESSOR: {} is not a zip",
                        path.display()
                    ));
                }
                version.push_str(&format!("\nprocessor {arch}: sha256 {}", hex_sha256(&zip)));
                zip
            }
            None => Vec::new(),
        };
        write(&out.join(name), &zip)?;
    }
    if from.is_none() {
        version.push_str(
            "\nprocessor: none carried (not a release build); `up` builds it from the source tree",
        );
    }
    // A Rust string literal (Debug escapes it), included by src/cli.rs.
    let source = format!("pub const LONG_VERSION: &str = {version:?};\n");
    write(&out.join("long_version.rs"), source.as_bytes())?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    // Unchanged files keep their mtime: no needless rebuild of the crate.
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
