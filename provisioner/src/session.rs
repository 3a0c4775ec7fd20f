//! What every command does first (region, caller, the database), and how every command talks
//! back: refusals before any change, confirmation, JSON on stdout.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::Value;

use crate::aws::{AwsError, Clients, required_str};
use crate::desired::{Database, Identity};
use crate::naming::{TargetKind, TargetRef};

/// Exit codes shared by `up` and `down`.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_REFUSED: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command stopped before changing anything.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
}

pub fn refuse(text: impl Into<String>) -> Refusal {
    Refusal::Message(text.into())
}

pub fn kind_word(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Cluster => "cluster",
        TargetKind::Instance => "instance",
    }
}

/// Region, caller and the database (`None`: RDS does not know it).
pub async fn resolve(
    clients: &Clients,
    target: &TargetRef,
) -> Result<(Identity, Option<Database>), Refusal> {
    let Some(region) = clients.region().map(str::to_owned) else {
        return Err(refuse(
            "no AWS region: pass --region, set AWS_REGION, or set one in the profile",
        ));
    };
    if let Some(arn_region) = &target.region
        && *arn_region != region
    {
        return Err(refuse(format!(
            "the {} ARN is in {arn_region} but the region in use is {region}; pass --region {arn_region}",
            kind_word(target.kind)
        )));
    }
    let caller = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            refuse(format!(
                "cannot find AWS credentials that work ({}); configure the standard chain (AWS_PROFILE, aws sso login, environment variables)",
                AwsError::new("sts:GetCallerIdentity", "the caller", e)
            ))
        })?;
    let account = required_str(
        caller.account(),
        "sts:GetCallerIdentity",
        "the caller",
        "Account",
    )?;
    let caller_arn = required_str(caller.arn(), "sts:GetCallerIdentity", "the caller", "Arn")?;
    let identity = Identity::new(&account, &caller_arn, &region);
    if let Some(account) = &target.account
        && *account != identity.account
    {
        return Err(refuse(format!(
            "the {} ARN is in account {account} but the credentials are for account {}",
            kind_word(target.kind),
            identity.account
        )));
    }
    let database = crate::database::observe(clients, target).await?;
    Ok((identity, database))
}

/// Asks on the terminal; off a terminal, refuses and names `--yes`.
pub fn confirm(question: &str) -> Result<bool, Refusal> {
    if !std::io::stdin().is_terminal() {
        return Err(refuse(format!(
            "{question} stdin is not a terminal to confirm: pass --yes (or --dry-run to look only)"
        )));
    }
    let _ = write!(std::io::stderr(), "{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| refuse(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// A refusal: the reason and "Nothing was changed." on stderr, and with `--output json` a
/// document of `command`, `error` and the command's own `fields`. Returns the exit code.
pub fn refused(
    command: &str,
    json_out: bool,
    progress: &crate::progress::Progress,
    e: &Refusal,
    fields: Value,
) -> u8 {
    progress.finish();
    crate::errln!("das-setup {command}: {e}");
    crate::errln!("Nothing was changed.");
    let mut doc = serde_json::json!({"command": command});
    if let (Some(doc), Value::Object(fields)) = (doc.as_object_mut(), fields) {
        doc.extend(fields);
        doc.insert("error".into(), Value::String(e.to_string()));
    }
    emit_json(json_out, &doc);
    EXIT_REFUSED
}

/// With `--output json`, stdout is exactly one JSON document.
pub fn emit_json(json_out: bool, doc: &Value) {
    if json_out {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(doc).unwrap_or_else(|_| doc.to_string())
        );
    }
}

/// The clock, in Unix milliseconds (0 before 1970, saturating far ahead): windows back from now
/// (`status`, `verify`, `replay`) and the time of events without one (`tail`, `alerts test`).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
