//! The resources das-setup manages, one module each. A module owns everything about its
//! resource: the state read back (`observe`, read-only calls), the comparison with what should
//! exist (`compare`, pure, into the module's own `Change` type), the changes (`apply`), the
//! deletion (`delete`, and the `verdict` that decides it) and the `status` check.
//!
//! [`Resource`] is the one vocabulary: the names below appear in the text and JSON of `up`,
//! `down` and `status` (field `resource`, and `check` for the checks of a resource), and are a
//! documented public interface (README, "Resources"). Renaming one is a breaking change.
//!
//! The shared machinery of changing things lives here too: [`Ctx`] (the clients, the progress
//! display, the count of mutating calls), bounded polls, and the retry for IAM's eventual
//! consistency, which each caller applies only to the calls and conditions AWS documents.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::aws::{AwsError, Clients};
use crate::progress::{Progress, Step, seconds};

pub mod activity_stream;
pub mod alarms;
pub mod bucket;
pub mod catalog;
pub mod delivery_stream;
pub mod function;
pub mod key;
pub mod log_group;
pub mod role;
pub mod topic;
pub mod workgroup;

/// Every resource das-setup creates, in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Key,
    SigningKey,
    ActivityStream,
    Bucket,
    AlertsTopic,
    Alarms,
    ProcessorRole,
    FirehoseRole,
    FunctionLogGroup,
    FirehoseLogGroup,
    Function,
    DeliveryStream,
    GlueTable,
    Workgroup,
}

impl Resource {
    pub const ALL: [Resource; 14] = [
        Resource::Key,
        Resource::SigningKey,
        Resource::ActivityStream,
        Resource::Bucket,
        Resource::AlertsTopic,
        Resource::Alarms,
        Resource::ProcessorRole,
        Resource::FirehoseRole,
        Resource::FunctionLogGroup,
        Resource::FirehoseLogGroup,
        Resource::Function,
        Resource::DeliveryStream,
        Resource::GlueTable,
        Resource::Workgroup,
    ];

    /// The public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Key => "kms-key",
            Resource::SigningKey => "signing-key",
            Resource::ActivityStream => "activity-stream",
            Resource::Bucket => "bucket",
            Resource::AlertsTopic => "alerts-topic",
            Resource::Alarms => "alarms",
            Resource::ProcessorRole => "processor-role",
            Resource::FirehoseRole => "firehose-role",
            Resource::FunctionLogGroup => "function-log-group",
            Resource::FirehoseLogGroup => "firehose-log-group",
            Resource::Function => "function",
            Resource::DeliveryStream => "delivery-stream",
            Resource::GlueTable => "glue-table",
            Resource::Workgroup => "athena-workgroup",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one change does to its resource, for the plan's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Creates (or starts) the resource.
    Create,
    /// Deletes it to create it again.
    Replace,
    /// Changes settings of an existing one.
    Update,
}

/// A resource's own change type.
pub trait Change: Copy + Eq + fmt::Display + fmt::Debug {
    fn effect(self) -> Effect;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Replace,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Unchanged => "unchanged",
        }
    }
}

/// The changes planned for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned<C> {
    pub name: String,
    pub changes: Vec<C>,
    /// Facts worth telling (a stream still starting, a setting kept as found ...).
    pub notes: Vec<String>,
}

impl<C: Change> Planned<C> {
    pub fn new(name: impl Into<String>, changes: Vec<C>) -> Self {
        Self {
            name: name.into(),
            changes,
            notes: Vec::new(),
        }
    }

    pub fn action(&self) -> Action {
        let effects = || self.changes.iter().map(|c| c.effect());
        if effects().any(|e| e == Effect::Replace) {
            Action::Replace
        } else if effects().any(|e| e == Effect::Create) {
            Action::Create
        } else if self.changes.is_empty() {
            Action::Unchanged
        } else {
            Action::Update
        }
    }

    pub fn has(&self, change: C) -> bool {
        self.changes.contains(&change)
    }

    pub fn descriptions(&self) -> Vec<String> {
        self.changes.iter().map(ToString::to_string).collect()
    }
}

/// What `down` does with one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delete,
    /// The activity stream: stop it (and wait).
    Stop,
    /// Already stopping: wait for it.
    WaitStopped,
    /// Kept, and why (not das-setup's, or not asked for).
    Keep(String),
    Absent,
}

impl Verdict {
    /// `down` has something to do.
    pub fn acts(&self) -> bool {
        matches!(self, Verdict::Delete | Verdict::Stop | Verdict::WaitStopped)
    }

    /// A resource that exists: deleted when it carries das-setup's `managed-by` tag.
    pub fn by_tags(tags: &std::collections::BTreeMap<String, String>) -> Verdict {
        use crate::naming::{TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE};
        if tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(TAG_MANAGED_BY_VALUE) {
            Verdict::Delete
        } else {
            Verdict::Keep(format!(
                "not tagged {TAG_MANAGED_BY}={TAG_MANAGED_BY_VALUE}: not das-setup's, left alone"
            ))
        }
    }
}

/// A `status` verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Unknown,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Unknown => "UNKNOWN",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One line of `status`: a resource's check is named after the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, level: Level, detail: impl Into<String>) -> Self {
        Self {
            name,
            level,
            detail: detail.into(),
        }
    }

    pub fn of(resource: Resource, level: Level, detail: impl Into<String>) -> Self {
        Self::new(resource.as_str(), level, detail)
    }
}

/// Why a change did not happen.
#[derive(Debug, Clone)]
pub enum ApplyError {
    Aws(AwsError),
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    Failed {
        what: String,
        reason: String,
    },
    /// A change this one needs failed first.
    Skipped {
        what: String,
    },
}

impl From<AwsError> for ApplyError {
    fn from(e: AwsError) -> Self {
        ApplyError::Aws(e)
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Aws(e) => write!(f, "{e}"),
            ApplyError::Timeout { what, waited, last } => write!(
                f,
                "gave up waiting for {what} after {} (last seen: {last}); run the command again to keep waiting",
                seconds(*waited)
            ),
            ApplyError::Failed { what, reason } => write!(f, "{what}: {reason}"),
            ApplyError::Skipped { what } => {
                write!(f, "{what}: not attempted, a change it depends on failed")
            }
        }
    }
}

pub type Res<T = ()> = Result<T, ApplyError>;

/// An [`ApplyError`] for a request das-setup could not build.
pub fn invalid(action: &'static str, resource: &str, e: impl fmt::Display) -> ApplyError {
    ApplyError::Aws(AwsError::invalid(action, resource, e.to_string()))
}

/// IAM changes reach Lambda and Firehose within seconds, rarely a minute (Terraform allows 2).
pub const IAM_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// Test switch (issue 8): fail every mutating call after this many, as if the process had been
/// killed there, to prove that a second `up` converges from any partial state. Read only by
/// debug builds (the tests'): a release build ignores it, so no environment can make a user's
/// `up` fail on purpose.
pub const STOP_AFTER_ENV: &str = "DAS_SETUP_TEST_STOP_AFTER_MUTATIONS";

/// What every change needs: the clients, the display, and the count of mutating calls.
pub struct Ctx<'a> {
    pub clients: &'a Clients,
    pub progress: &'a Progress,
    mutations: AtomicUsize,
    stop_after: Option<usize>,
}

impl<'a> Ctx<'a> {
    pub fn new(clients: &'a Clients, progress: &'a Progress) -> Self {
        let stop_after = if cfg!(debug_assertions) {
            std::env::var(STOP_AFTER_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
        } else {
            None
        };
        Self {
            clients,
            progress,
            mutations: AtomicUsize::new(0),
            stop_after,
        }
    }

    /// Mutating calls made so far (each counted once, however often it was retried).
    pub fn mutations(&self) -> usize {
        self.mutations.load(Ordering::Relaxed)
    }

    /// Counts a mutating call; the test switch makes it fail instead.
    pub fn mutate(&self, action: &'static str, resource: &str) -> Res {
        let n = self.mutations.fetch_add(1, Ordering::SeqCst);
        if let Some(limit) = self.stop_after
            && n >= limit
        {
            return Err(ApplyError::Failed {
                what: format!("{action} on {resource}"),
                reason: format!("stopped by {STOP_AFTER_ENV}={limit} (test switch)"),
            });
        }
        Ok(())
    }

    /// Runs `call` again while `propagating` says IAM has not reached the service yet, for a
    /// bounded time. Each caller passes the conditions AWS documents for its call.
    pub async fn retry_iam<T, F, Fut>(
        &self,
        what: &str,
        propagating: fn(&AwsError) -> bool,
        mut call: F,
    ) -> Res<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_secs(1);
        let mut step = None;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if propagating(&e) && start.elapsed() < IAM_PROPAGATION_TIMEOUT => {
                    let s = step.get_or_insert_with(|| {
                        self.progress
                            .begin(format!("waiting for IAM to reach {what}"), true)
                    });
                    s.tick();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn poll(&self, what: String, timeout: Duration) -> Poll {
        Poll::new(self.progress, what, timeout)
    }
}

/// A service error of `code` whose message says IAM has not propagated: AWS models no separate
/// error for it, so the caller names the documented code and message fragments.
pub fn message_says(e: &AwsError, code: &str, fragments: &[&str]) -> bool {
    e.kind == crate::aws::ErrorKind::Service
        && e.code_is(code)
        && fragments.iter().any(|f| e.message.contains(f))
}

/// A bounded poll with growing intervals (0.5 s up to 10 s), shown as a step.
pub struct Poll {
    step: Step,
    deadline: Instant,
    interval: Duration,
    what: String,
}

impl Poll {
    pub fn new(progress: &Progress, what: String, timeout: Duration) -> Self {
        Self {
            step: progress.begin(format!("waiting for {what}"), true),
            deadline: Instant::now() + timeout,
            interval: Duration::from_millis(500),
            what,
        }
    }

    /// Sleeps before the next look, or fails naming the resource once the deadline passed.
    pub async fn next(&mut self, last: &str) -> Res {
        if Instant::now() + self.interval > self.deadline {
            return Err(ApplyError::Timeout {
                what: self.what.clone(),
                waited: self.step.elapsed(),
                last: last.to_owned(),
            });
        }
        tokio::time::sleep(self.interval).await;
        self.interval = (self.interval.mul_f64(1.5)).min(Duration::from_secs(10));
        self.step.tick();
        Ok(())
    }

    pub fn done(self, text: &str) {
        self.step.done(text);
    }
}

/// das-setup's tags are missing or differ (other tags are the owner's business).
pub fn missing_tags(
    want: &std::collections::BTreeMap<String, String>,
    have: &std::collections::BTreeMap<String, String>,
) -> bool {
    want.iter().any(|(k, v)| have.get(k) != Some(v))
}

#[cfg(test)]
pub(crate) mod testing;
