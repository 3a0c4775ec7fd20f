//! The processor Lambda: built from the sibling crate (or `--lambda-zip`), configured with the
//! processor's environment, waited for until `Active` and its last update `Successful` (the
//! delivery stream must not point at a function that is not ready).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::operation::delete_function::DeleteFunctionError;
use aws_sdk_lambda::operation::get_function::GetFunctionError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{self as t, Architecture, LastUpdateStatus, Runtime, State};

use das_processor::config::var;

use super::{
    ApplyError, Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict, message_says,
    missing_tags,
};
use crate::aws::{AwsError, Clients, Named as _, required_str};
use crate::desired::{self, Desired};
use crate::session::kind_word;

pub const READY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState {
    pub arn: String,
    pub role_arn: Option<String>,
    pub runtime: Option<Runtime>,
    pub handler: Option<String>,
    pub memory_mb: Option<i32>,
    pub timeout_seconds: Option<i32>,
    /// Lambda's default when it names none: `x86_64` (CreateFunction API reference).
    pub arch: Architecture,
    pub environment: BTreeMap<String, String>,
    pub code_sha256: Option<String>,
    pub state: Option<State>,
    pub last_update_status: Option<LastUpdateStatus>,
    pub tags: BTreeMap<String, String>,
}

impl FunctionState {
    pub fn failed(&self) -> bool {
        self.state == Some(State::Failed)
            || self.last_update_status == Some(LastUpdateStatus::Failed)
    }

    fn describe_state(&self) -> String {
        format!(
            "state {}, last update {}",
            self.state.as_ref().map_or("unknown", State::as_str),
            self.last_update_status
                .as_ref()
                .map_or("unknown", LastUpdateStatus::as_str)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FunctionChange {
    Create,
    Configuration,
    Code,
    Tags,
}

impl fmt::Display for FunctionChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FunctionChange::Create => "create function",
            FunctionChange::Configuration => "configuration",
            FunctionChange::Code => "code",
            FunctionChange::Tags => "tags",
        })
    }
}

impl Change for FunctionChange {
    fn effect(self) -> Effect {
        match self {
            FunctionChange::Create => Effect::Create,
            FunctionChange::Configuration | FunctionChange::Code | FunctionChange::Tags => {
                Effect::Update
            }
        }
    }
}

pub async fn observe(clients: &Clients, name: &str) -> Result<Option<FunctionState>, AwsError> {
    const ACTION: &str = "lambda:GetFunction";
    let what = format!("function {name}");
    let Some(out) = clients
        .lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .or_absent(ACTION, &what, |e| {
            matches!(e, GetFunctionError::ResourceNotFoundException(_))
        })?
    else {
        return Ok(None);
    };
    let Some(c) = out.configuration() else {
        return Err(AwsError::invalid(
            ACTION,
            what,
            "the answer has no Configuration".into(),
        ));
    };
    // "Lambda returns tag data only if you have explicit allow permissions for lambda:ListTags"
    // (GetFunction API reference, `Tags`); otherwise `TagsError` says why. Unknown tags are not
    // "no tags": that would make `down` keep das-setup's function and `up` tag it again.
    if let Some(e) = out.tags_error() {
        return Err(AwsError::invalid(
            "lambda:ListTags",
            what,
            format!(
                "GetFunction could not read the function's tags ({}: {}); the deploying principal needs lambda:ListTags on it",
                e.error_code(),
                e.message()
            ),
        ));
    }
    Ok(Some(FunctionState {
        arn: required_str(c.function_arn(), ACTION, &what, "Configuration.FunctionArn")?,
        role_arn: c.role().map(str::to_owned),
        runtime: c.runtime().cloned(),
        handler: c.handler().map(str::to_owned),
        memory_mb: c.memory_size(),
        timeout_seconds: c.timeout(),
        arch: c
            .architectures()
            .first()
            .cloned()
            .unwrap_or(Architecture::X8664),
        environment: c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        code_sha256: c.code_sha256().map(str::to_owned),
        state: c.state().cloned(),
        last_update_status: c.last_update_status().cloned(),
        tags: out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }))
}

pub fn compare(d: &Desired, state: Option<&FunctionState>) -> Planned<FunctionChange> {
    let mut plan = Planned::new(d.names.function.clone(), vec![]);
    let Some(f) = state else {
        plan.changes.push(FunctionChange::Create);
        return plan;
    };
    let want = &d.function;
    if f.role_arn.as_deref() != Some(&want.role_arn)
        || f.runtime.as_ref().map(Runtime::as_str) != Some(&want.runtime)
        || f.handler.as_deref() != Some(&want.handler)
        || f.memory_mb != Some(want.memory_mb)
        || f.timeout_seconds != Some(want.timeout_seconds)
        || f.environment != want.environment
    {
        plan.changes.push(FunctionChange::Configuration);
    }
    if f.code_sha256.as_deref() != Some(&want.code_sha256) || f.arch.as_str() != want.arch {
        plan.changes.push(FunctionChange::Code);
    }
    if missing_tags(&d.tags, &f.tags) {
        plan.changes.push(FunctionChange::Tags);
    }
    if f.state == Some(State::Failed) {
        plan.notes.push("its state is Failed".into());
    }
    plan
}

/// IAM has not reached Lambda yet. IAM documents that a new or changed role takes time to be
/// visible everywhere (IAM User Guide, "Changes that I make are not always immediately
/// visible"); Lambda models no error for it: CreateFunction and UpdateFunctionConfiguration
/// answer their generic InvalidParameterValueException (Lambda API reference, Errors) with the
/// message "The role defined for the function cannot be assumed by Lambda." or "The provided
/// execution role does not have permissions ...". Those two messages, on that code, are the
/// conditions terraform-provider-aws retries for its IAM propagation timeout
/// (internal/service/lambda/function.go); nothing else is retried.
fn propagating(e: &AwsError) -> bool {
    message_says(
        e,
        "InvalidParameterValueException",
        &[
            "cannot be assumed by Lambda",
            "The provided execution role does not have permissions",
        ],
    )
}

pub async fn apply(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<FunctionChange>, zip: &[u8]) -> Res {
    let name = &d.names.function;
    let what = format!("function {name}");
    let lambda = &ctx.clients.lambda;
    let spec = &d.function;
    let environment = || {
        t::Environment::builder()
            .set_variables(Some(
                spec.environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            ))
            .build()
    };
    let description = format!(
        "Decrypts and classifies the activity stream of {} {} (das-setup)",
        kind_word(d.database.kind),
        d.database.id
    );
    for change in &plan.changes {
        let step = ctx.progress.begin(format!("{what}: {change}"), false);
        match change {
            FunctionChange::Create => {
                // Counted (and the test switch checked) once, not per IAM-propagation retry.
                ctx.mutate("lambda:CreateFunction", name)?;
                let created = ctx
                    .retry_iam(&what, propagating, || async {
                        lambda
                            .create_function()
                            .function_name(name)
                            .description(&description)
                            .runtime(Runtime::from(spec.runtime.as_str()))
                            .handler(&spec.handler)
                            .role(&spec.role_arn)
                            .architectures(Architecture::from(spec.arch.as_str()))
                            .memory_size(spec.memory_mb)
                            .timeout(spec.timeout_seconds)
                            .environment(environment())
                            .code(t::FunctionCode::builder().zip_file(Blob::new(zip)).build())
                            .set_tags(Some(d.tags.clone().into_iter().collect()))
                            .send()
                            .await
                            .map_err(|e| {
                                if e.as_service_error().is_some_and(|e| {
                                    matches!(e, CreateFunctionError::ResourceConflictException(_))
                                }) {
                                    AwsError::invalid(
                                        "lambda:CreateFunction",
                                        &what,
                                        "it was created meanwhile by someone else; run `das-setup up` again".into(),
                                    )
                                } else {
                                    AwsError::new("lambda:CreateFunction", &what, e)
                                }
                            })
                    })
                    .await;
                created?;
            }
            FunctionChange::Configuration => {
                wait_ready(ctx, name, &what, None).await?;
                ctx.mutate("lambda:UpdateFunctionConfiguration", name)?;
                ctx.retry_iam(&what, propagating, || async {
                    lambda
                        .update_function_configuration()
                        .function_name(name)
                        .description(&description)
                        .runtime(Runtime::from(spec.runtime.as_str()))
                        .handler(&spec.handler)
                        .role(&spec.role_arn)
                        .memory_size(spec.memory_mb)
                        .timeout(spec.timeout_seconds)
                        .environment(environment())
                        .send()
                        .await
                        .named("lambda:UpdateFunctionConfiguration", &what)
                })
                .await?;
            }
            FunctionChange::Code => {
                wait_ready(ctx, name, &what, None).await?;
                ctx.mutate("lambda:UpdateFunctionCode", name)?;
                lambda
                    .update_function_code()
                    .function_name(name)
                    .zip_file(Blob::new(zip))
                    .architectures(Architecture::from(spec.arch.as_str()))
                    .send()
                    .await
                    .named("lambda:UpdateFunctionCode", &what)?;
            }
            FunctionChange::Tags => {
                ctx.mutate("lambda:TagResource", name)?;
                lambda
                    .tag_resource()
                    .resource(&d.function_arn)
                    .set_tags(Some(d.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .named("lambda:TagResource", &what)?;
            }
        }
        step.done(&format!("{what}: {change}"));
    }
    // Always: the delivery stream must not point at a function that is not ready.
    let announce = (!plan.changes.is_empty()).then_some(ctx.progress);
    wait_ready(ctx, name, &what, announce).await
}

/// A state in which the function can be updated and invoked.
fn ready(state: &State) -> bool {
    matches!(state, State::Active | State::Inactive)
}

/// Waits for `State = Active` (or `Inactive`) and `LastUpdateStatus = Successful`.
async fn wait_ready(
    ctx: &Ctx<'_>,
    name: &str,
    what: &str,
    announce: Option<&crate::progress::Progress>,
) -> Res {
    let mut poll: Option<super::Poll> = None;
    loop {
        let c = ctx
            .clients
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .named("lambda:GetFunctionConfiguration", what)?;
        let state = c.state();
        let update = c.last_update_status();
        let describe = || {
            format!(
                "state {}, last update {}",
                state.map_or("unknown", State::as_str),
                update.map_or("unknown", LastUpdateStatus::as_str)
            )
        };
        if state == Some(&State::Failed) || update == Some(&LastUpdateStatus::Failed) {
            return Err(ApplyError::Failed {
                what: what.to_owned(),
                reason: format!(
                    "{}: {}",
                    describe(),
                    c.state_reason()
                        .or(c.last_update_status_reason())
                        .unwrap_or("no reason given")
                ),
            });
        }
        // Inactive counts as ready: "A function becomes inactive when it has been idle long
        // enough"; only an invocation (Firehose's first, which it retries) makes it Active
        // again (Lambda Developer Guide, "Lambda function states"). Waiting would never end.
        if state.is_none_or(ready) && update.is_none_or(|u| *u == LastUpdateStatus::Successful) {
            if let Some(p) = poll {
                p.done(&format!("{what} is active"));
            } else if let Some(progress) = announce {
                progress.line(&format!("  ✓ {what} is active"));
            }
            return Ok(());
        }
        let p = poll.get_or_insert_with(|| ctx.poll(format!("{what} to be active"), READY_TIMEOUT));
        p.next(&describe()).await?;
    }
}

pub fn verdict(state: Option<&FunctionState>) -> Verdict {
    state.map_or(Verdict::Absent, |f| Verdict::by_tags(&f.tags))
}

pub async fn delete(clients: &Clients, name: &str) -> Result<(), AwsError> {
    clients
        .lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
        .or_absent("lambda:DeleteFunction", name, |e| {
            matches!(e, DeleteFunctionError::ResourceNotFoundException(_))
        })?;
    Ok(())
}

/// `status`: the function exists, is ready, and is configured as `up` sets it.
pub fn check(name: &str, f: Option<&FunctionState>, want: Option<&Desired>) -> Check {
    let Some(f) = f else {
        return Check::of(
            Resource::Function,
            Level::Fail,
            format!("{name} does not exist: records cannot be processed"),
        );
    };
    if f.failed() {
        return Check::of(
            Resource::Function,
            Level::Fail,
            format!("{name}: {}", f.describe_state()),
        );
    }
    if let Some(s) = &f.state
        && !ready(s)
    {
        return Check::of(
            Resource::Function,
            Level::Warn,
            format!("{name}: state {}", s.as_str()),
        );
    }
    let mut differs = Vec::new();
    let runtime = f.runtime.as_ref().map_or("none", Runtime::as_str);
    if runtime != desired::RUNTIME {
        differs.push(format!("runtime {runtime}"));
    }
    if f.handler.as_deref() != Some(desired::HANDLER) {
        differs.push(format!(
            "handler {}",
            f.handler.as_deref().unwrap_or("none")
        ));
    }
    if f.memory_mb != Some(desired::MEMORY_MB) {
        differs.push(format!("memory {} MB", f.memory_mb.unwrap_or_default()));
    }
    if f.timeout_seconds != Some(desired::TIMEOUT_SECONDS) {
        differs.push(format!(
            "timeout {} s",
            f.timeout_seconds.unwrap_or_default()
        ));
    }
    if let Some(d) = want
        && f.role_arn.as_deref() != Some(&d.processor_role_arn)
    {
        differs.push(format!("role {}", f.role_arn.as_deref().unwrap_or("none")));
    }
    if !f.environment.contains_key(var::OUTPUT_BUCKET) {
        differs.push(format!("no {}", var::OUTPUT_BUCKET));
    }
    if differs.is_empty() {
        let state = match &f.state {
            Some(State::Inactive) => "Inactive (idle: the next invocation activates it)",
            _ => "Active",
        };
        Check::of(
            Resource::Function,
            Level::Ok,
            format!("{name}: {state}, {runtime}, {}", f.arch.as_str()),
        )
    } else {
        Check::of(
            Resource::Function,
            Level::Warn,
            format!(
                "{name}: differs from what up sets: {} (das-setup up restores it)",
                differs.join(", ")
            ),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The function as a complete `up` of `d` leaves it.
    pub(crate) fn converged(d: &Desired) -> FunctionState {
        FunctionState {
            arn: d.function_arn.clone(),
            role_arn: Some(d.function.role_arn.clone()),
            runtime: Some(Runtime::from(d.function.runtime.as_str())),
            handler: Some(d.function.handler.clone()),
            memory_mb: Some(d.function.memory_mb),
            timeout_seconds: Some(d.function.timeout_seconds),
            arch: Architecture::from(d.function.arch.as_str()),
            environment: d.function.environment.clone(),
            code_sha256: Some(d.function.code_sha256.clone()),
            state: Some(State::Active),
            last_update_status: Some(LastUpdateStatus::Successful),
            tags: d.tags.clone(),
        }
    }

    const ACTIVE: &str = r#"{"FunctionName":"f","State":"Active","LastUpdateStatus":"Successful"}"#;

    #[tokio::test]
    async fn create_is_retried_only_while_iam_propagates() {
        let d = crate::desired::tests::desired_started();
        let attempts = Arc::new(AtomicUsize::new(0));
        let seen = attempts.clone();
        let fake = FakeAws::new(move |c| {
            if c.operation.starts_with("POST /2015-03-31/functions") {
                // The documented propagation answer once, then success.
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    Answer::error_rest_json(
                        400,
                        "InvalidParameterValueException",
                        "The role defined for the function cannot be assumed by Lambda.",
                    )
                } else {
                    Answer::rest_json(
                        201,
                        r#"{"FunctionName":"f","FunctionArn":"arn:aws:lambda:eu-west-1:1:function:f"}"#,
                    )
                }
            } else if c.operation.contains("/configuration") {
                Answer::rest_json(200, ACTIVE)
            } else {
                Answer::unexpected()
            }
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        let plan = compare(&d, None);
        assert_eq!(plan.changes, [FunctionChange::Create]);
        let result = apply(&ctx, &d, &plan, b"zip").await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // One mutation, however often it was retried.
        assert_eq!(ctx.mutations(), 1);

        // Another InvalidParameterValueException is not propagation: no retry.
        let fake = FakeAws::new(|_| {
            Answer::error_rest_json(
                400,
                "InvalidParameterValueException",
                "Unzipped size must be smaller than 262144000 bytes",
            )
        });
        let clients = fake.clients();
        let ctx = Ctx::new(&clients, &progress);
        let result = apply(&ctx, &d, &plan, b"zip").await;
        assert!(
            matches!(&result, Err(ApplyError::Aws(e)) if e.message.contains("Unzipped")),
            "{result:?}"
        );
        assert_eq!(fake.calls().len(), 1);
    }

    #[tokio::test]
    async fn an_unchanged_function_is_only_looked_at() {
        let d = crate::desired::tests::desired_started();
        let state = converged(&d);
        let plan = compare(&d, Some(&state));
        assert!(plan.changes.is_empty(), "{plan:?}");
        let fake = FakeAws::new(|_| Answer::rest_json(200, ACTIVE));
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        assert!(
            apply(&Ctx::new(&clients, &progress), &d, &plan, b"zip")
                .await
                .is_ok()
        );
        // The readiness look only: nothing is changed.
        assert_eq!(
            fake.operations(),
            [format!(
                "GET /2015-03-31/functions/{}/configuration",
                d.names.function
            )]
        );
        assert_eq!(
            check(&d.names.function, Some(&state), Some(&d)).level,
            Level::Ok
        );
    }

    #[tokio::test]
    async fn an_inactive_function_is_ready_at_once() {
        // Regression: `up` waited for Active, which an idle function never becomes by waiting.
        let d = crate::desired::tests::desired_started();
        let fake = FakeAws::new(|_| {
            Answer::rest_json(
                200,
                r#"{"FunctionName":"f","State":"Inactive","LastUpdateStatus":"Successful"}"#,
            )
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let plan = Planned::new(d.names.function.clone(), vec![]);
        let result = apply(&Ctx::new(&clients, &progress), &d, &plan, b"zip").await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(fake.calls().len(), 1, "one look, no polling");
        let mut state = converged(&d);
        state.state = Some(State::Inactive);
        let check = check(&d.names.function, Some(&state), Some(&d));
        assert_eq!(check.level, Level::Ok, "{check:?}");
        assert!(check.detail.contains("Inactive"), "{check:?}");
    }

    #[tokio::test]
    async fn tags_lambda_would_not_read_are_an_error_not_an_empty_set() {
        let fake = FakeAws::new(|_| {
            Answer::rest_json(
                200,
                r#"{"Configuration":{"FunctionName":"f","FunctionArn":"arn:aws:lambda:eu-west-1:1:function:f"},
                    "TagsError":{"ErrorCode":"AccessDeniedException","Message":"not allowed lambda:ListTags"}}"#,
            )
        });
        let e = observe(&fake.clients(), "f").await;
        assert!(
            matches!(&e, Err(e) if e.to_string().contains("needs lambda:ListTags")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_function_is_none_and_delete_of_it_is_done() {
        let fake = FakeAws::new(|_| {
            Answer::error_rest_json(404, "ResourceNotFoundException", "Function not found")
        });
        let clients = fake.clients();
        assert!(matches!(observe(&clients, "f").await, Ok(None)));
        assert!(delete(&clients, "f").await.is_ok());
        assert_eq!(
            fake.operations(),
            [
                "GET /2015-03-31/functions/f",
                "DELETE /2015-03-31/functions/f"
            ]
        );
    }
}
