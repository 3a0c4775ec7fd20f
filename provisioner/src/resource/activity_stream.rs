//! The database's activity stream: started by `up` (after a stopping one has stopped), stopped
//! by `down`. RDS creates and deletes its Kinesis stream; das-setup only starts and stops it.

use std::fmt;
use std::time::Duration;

use aws_sdk_rds::operation::stop_activity_stream::StopActivityStreamError;
use aws_sdk_rds::types::{
    ActivityStreamPolicyStatus as PolicyStatus, ActivityStreamStatus as Status, AuditPolicyState,
};

use super::{ApplyError, Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict};
use crate::aws::{Clients, Named as _};
use crate::database::{self, Database};
use crate::desired::Desired;
use crate::naming::TargetRef;
use crate::session::kind_word;

/// How long starting or stopping may take before the command gives up naming it.
pub const START_TIMEOUT: Duration = Duration::from_secs(45 * 60);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(45 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StreamChange {
    Start,
    /// `--audit-policy locked` (RDS for Oracle and SQL Server), once the stream is started.
    LockAuditPolicy,
    /// `--audit-policy unlocked`.
    UnlockAuditPolicy,
}

impl fmt::Display for StreamChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamChange::Start => "start activity stream",
            StreamChange::LockAuditPolicy => "lock the audit policy",
            StreamChange::UnlockAuditPolicy => "unlock the audit policy",
        })
    }
}

impl Change for StreamChange {
    fn effect(self) -> Effect {
        match self {
            StreamChange::Start => Effect::Create,
            StreamChange::LockAuditPolicy | StreamChange::UnlockAuditPolicy => Effect::Update,
        }
    }
}

/// How long RDS may take to lock or unlock the audit policy.
pub const POLICY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The lock a policy status settles to: `locking-policy` becomes `locked` ("Modifying a
/// database activity stream for Amazon RDS", RDS User Guide).
fn settled(status: &PolicyStatus) -> Option<AuditPolicyState> {
    match status {
        PolicyStatus::Locked | PolicyStatus::LockingPolicy => Some(AuditPolicyState::LockedPolicy),
        PolicyStatus::Unlocked | PolicyStatus::UnlockingPolicy => {
            Some(AuditPolicyState::UnlockedPolicy)
        }
        _ => None,
    }
}

pub fn compare(d: &Desired) -> Planned<StreamChange> {
    let mut plan = Planned::new(d.stream_name.clone(), vec![]);
    match &d.database.stream.status {
        Status::Started => {}
        Status::Starting => plan.notes.push("starting: up waits for it".into()),
        Status::Stopping => {
            plan.changes.push(StreamChange::Start);
            plan.notes
                .push("stopping: up waits for it to stop, then starts it".into());
        }
        _ => plan.changes.push(StreamChange::Start),
    }
    if plan.has(StreamChange::Start) {
        plan.notes.extend(warnings(&d.database));
        plan.notes.extend(d.support_notes.iter().cloned());
    }
    if let Some(want) = &d.audit_policy {
        // A stream RDS starts has its audit policy locked (RDS User Guide, "Modifying a database
        // activity stream for Amazon RDS").
        let current = if plan.has(StreamChange::Start) {
            Some(AuditPolicyState::LockedPolicy)
        } else {
            d.database.stream.policy.as_ref().and_then(settled)
        };
        if current.as_ref() != Some(want) {
            plan.changes
                .push(if *want == AuditPolicyState::LockedPolicy {
                    StreamChange::LockAuditPolicy
                } else {
                    StreamChange::UnlockAuditPolicy
                });
        }
    }
    plan
}

/// What starting the stream does beyond recording, that the person confirming must know.
pub fn warnings(db: &Database) -> Vec<String> {
    let mut out = vec![
        // "If you choose Schedule for the next maintenance window, the database doesn't restart
        // right away" (User Guide, "Starting a database activity stream"): up applies it
        // immediately, so RDS restarts the database now.
        "applied immediately: RDS restarts the database to start it".to_owned(),
    ];
    if db.engine.starts_with("oracle") {
        // "Turning on an activity stream for an Oracle DB instance clears existing audit data.
        // It also revokes audit trail privileges." (RDS User Guide, same section)
        out.push(
            "Oracle: this clears the existing audit data and revokes audit trail privileges"
                .to_owned(),
        );
    }
    if db.engine == "aurora-mysql" {
        // "Aurora MySQL DB clusters must be able to access AWS KMS endpoints"; without a route
        // (NAT, or an interface VPC endpoint for KMS) "the activity stream fails" (Aurora User
        // Guide, "Network prerequisites for Aurora MySQL database activity streams").
        out.push(
            "Aurora MySQL: the instances must reach KMS (a NAT route or a com.amazonaws.<region>.kms VPC endpoint), or the stream stops"
                .to_owned(),
        );
    }
    out
}

fn what(db: &Database) -> String {
    format!("the activity stream of {} {}", kind_word(db.kind), db.id)
}

/// Starts the stream if the plan says so (after a stopping one has stopped); returns its
/// status. Waiting for `started` is [`wait_started`].
pub async fn start(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<StreamChange>) -> Res<Status> {
    let db = &d.database;
    let what = what(db);
    let mut status = db.stream.status.clone();
    if status == Status::Stopping {
        let mut poll = ctx.poll(format!("{what} to stop"), START_TIMEOUT);
        while status != Status::Stopped {
            poll.next(status.as_str()).await?;
            status = current(ctx.clients, db).await?;
        }
        poll.done(&format!("{what} stopped"));
    }
    for change in &plan.changes {
        match change {
            StreamChange::LockAuditPolicy | StreamChange::UnlockAuditPolicy => {}
            StreamChange::Start => {
                ctx.mutate("rds:StartActivityStream", &db.arn)?;
                let step = ctx.progress.begin(format!("starting {what}"), false);
                ctx.clients
                    .rds
                    .start_activity_stream()
                    .resource_arn(&db.arn)
                    .mode(d.mode.clone())
                    .kms_key_id(&d.key.arn)
                    .apply_immediately(true)
                    .send()
                    .await
                    .named("rds:StartActivityStream", &db.arn)?;
                step.done(&format!(
                    "asked RDS to start {what} ({} mode)",
                    d.mode.as_str().to_ascii_lowercase()
                ));
                status = Status::Starting;
            }
        }
    }
    Ok(status)
}

pub async fn wait_started(ctx: &Ctx<'_>, db: &Database, mut status: Status) -> Res {
    if status == Status::Started {
        return Ok(());
    }
    let what = what(db);
    let mut poll = ctx.poll(format!("{what} to start"), START_TIMEOUT);
    loop {
        match &status {
            Status::Started => break,
            Status::Starting => {}
            other => {
                return Err(ApplyError::Failed {
                    what,
                    reason: format!(
                        "its status became {:?} while starting; see the RDS events of the database",
                        other.as_str()
                    ),
                });
            }
        }
        poll.next(status.as_str()).await?;
        status = current(ctx.clients, db).await?;
    }
    poll.done(&format!("{what} started"));
    Ok(())
}

/// Locks or unlocks the audit policy of a started stream if the plan says so, and waits until
/// RDS reports it settled.
pub async fn set_audit_policy(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<StreamChange>) -> Res {
    let db = &d.database;
    for change in &plan.changes {
        let (state, word) = match change {
            StreamChange::Start => continue,
            StreamChange::LockAuditPolicy => (AuditPolicyState::LockedPolicy, "locked"),
            StreamChange::UnlockAuditPolicy => (AuditPolicyState::UnlockedPolicy, "unlocked"),
        };
        let what = format!("the audit policy of {}", what(db));
        ctx.mutate("rds:ModifyActivityStream", &db.arn)?;
        ctx.clients
            .rds
            .modify_activity_stream()
            .resource_arn(&db.arn)
            .audit_policy_state(state.clone())
            .send()
            .await
            .named("rds:ModifyActivityStream", &db.arn)?;
        let mut poll = ctx.poll(format!("{what} to be {word}"), POLICY_TIMEOUT);
        loop {
            let now = database::observe(ctx.clients, &target_of(db)).await?;
            let status = now.as_ref().and_then(|n| n.stream.policy.clone());
            if status.as_ref().is_some_and(|s| *s == exact(&state)) {
                break;
            }
            poll.next(status.as_ref().map_or("unknown", PolicyStatus::as_str))
                .await?;
        }
        poll.done(&format!("{what} is {word}"));
    }
    Ok(())
}

fn exact(state: &AuditPolicyState) -> PolicyStatus {
    if *state == AuditPolicyState::LockedPolicy {
        PolicyStatus::Locked
    } else {
        PolicyStatus::Unlocked
    }
}

/// The stream's status now; a database that disappeared is an error.
async fn current(clients: &Clients, db: &Database) -> Res<Status> {
    match database::observe(clients, &target_of(db)).await? {
        Some(now) => Ok(now.stream.status),
        None => Err(ApplyError::Failed {
            what: format!("{} {}", kind_word(db.kind), db.id),
            reason: "no longer exists".into(),
        }),
    }
}

fn target_of(db: &Database) -> TargetRef {
    TargetRef {
        kind: db.kind,
        id: db.id.clone(),
        region: None,
        account: None,
    }
}

/// `down`: stop a running stream, wait for a stopping one.
pub fn verdict(db: Option<&Database>) -> Verdict {
    match db.map(|d| &d.stream.status) {
        Some(Status::Started | Status::Starting) => Verdict::Stop,
        Some(Status::Stopping) => Verdict::WaitStopped,
        _ => Verdict::Absent,
    }
}

/// Stops the stream and waits until it is stopped. A starting stream cannot be stopped yet:
/// wait for `started`, stop it, wait for `stopped`.
pub async fn stop(ctx: &Ctx<'_>, db: &Database) -> Res {
    let what = what(db);
    let mut poll = ctx.poll(format!("{what} to stop"), STOP_TIMEOUT);
    let mut status = db.stream.status.clone();
    loop {
        match &status {
            Status::Stopped => {
                poll.done(&format!("{what} stopped"));
                return Ok(());
            }
            Status::Started => {
                let stopped = ctx
                    .clients
                    .rds
                    .stop_activity_stream()
                    .resource_arn(&db.arn)
                    .apply_immediately(true)
                    .send()
                    .await;
                // RDS answers InvalidDBClusterStateFault / InvalidDBInstanceStateFault when the
                // stream is not `started` (StopActivityStream API reference, Errors): stopped or
                // stopping meanwhile, which the next look tells.
                let raced = stopped
                    .as_ref()
                    .err()
                    .and_then(|e| e.as_service_error())
                    .is_some_and(|e| {
                        matches!(
                            e,
                            StopActivityStreamError::InvalidDbClusterStateFault(_)
                                | StopActivityStreamError::InvalidDbInstanceStateFault(_)
                        )
                    });
                if !raced {
                    stopped.named("rds:StopActivityStream", &db.arn)?;
                }
            }
            _ => {}
        }
        poll.next(status.as_str()).await?;
        status = database::observe(ctx.clients, &target_of(db))
            .await?
            .map_or(Status::Stopped, |d| d.stream.status);
    }
}

/// `status`: is the database's activity being recorded?
pub fn check(db: &Database) -> Check {
    let s = &db.stream;
    match &s.status {
        Status::Started => Check::of(
            Resource::ActivityStream,
            Level::Ok,
            format!(
                "started, {} mode{}",
                s.mode
                    .as_ref()
                    .map_or("unknown".to_owned(), |m| m.as_str().to_ascii_lowercase()),
                s.policy
                    .as_ref()
                    .map(|p| format!(", audit policy {}", p.as_str()))
                    .unwrap_or_default()
            ),
        ),
        Status::Starting => Check::of(
            Resource::ActivityStream,
            Level::Warn,
            "starting: events are not recorded yet",
        ),
        other => Check::of(
            Resource::ActivityStream,
            Level::Fail,
            format!(
                "{}: the database's activity is not being recorded (das-setup up starts it)",
                other.as_str()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    fn cluster(status: Option<&str>) -> String {
        format!(
            "<DescribeDBClustersResponse><DescribeDBClustersResult><DBClusters><DBCluster>\
             <DBClusterIdentifier>db</DBClusterIdentifier><DBClusterArn>arn:aws:rds:eu-west-1:111122223333:cluster:db</DBClusterArn>\
             <DbClusterResourceId>cluster-ABC</DbClusterResourceId><Engine>aurora-postgresql</Engine><Status>available</Status>\
             <DBClusterMembers><DBClusterMember><DBInstanceIdentifier>i</DBInstanceIdentifier></DBClusterMember></DBClusterMembers>\
             {}</DBCluster></DBClusters></DescribeDBClustersResult></DescribeDBClustersResponse>",
            status.map_or(String::new(), |s| format!("<ActivityStreamStatus>{s}</ActivityStreamStatus><ActivityStreamMode>async</ActivityStreamMode>"))
        )
    }

    #[tokio::test]
    async fn observe_reads_the_typed_stream_status() {
        let fake = FakeAws::new(|c| match c.operation.as_str() {
            "DescribeDBClusters" => Answer::xml(200, &cluster(Some("started"))),
            _ => Answer::unexpected(),
        });
        let target = TargetRef::parse(crate::naming::TargetKind::Cluster, "db").unwrap();
        let db = database::observe(&fake.clients(), &target)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(db.stream.status, Status::Started);
        assert_eq!(db.resource_id, "cluster-ABC");
        assert_eq!(verdict(Some(&db)), Verdict::Stop);
        assert_eq!(check(&db).level, Level::Ok);
        // No status at all: never had a stream.
        let fake = FakeAws::new(|_| Answer::xml(200, &cluster(None)));
        let db = database::observe(&fake.clients(), &target)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(db.stream.status, Status::Stopped);
        assert_eq!(verdict(Some(&db)), Verdict::Absent);
    }

    #[tokio::test]
    async fn an_unknown_cluster_is_none_from_the_modelled_fault() {
        let fake = FakeAws::new(|_| {
            Answer::error_query(404, "DBClusterNotFoundFault", "DBCluster db not found.")
        });
        let target = TargetRef::parse(crate::naming::TargetKind::Cluster, "db").unwrap();
        let db = database::observe(&fake.clients(), &target).await;
        assert!(matches!(db, Ok(None)), "{db:?}");
    }

    #[tokio::test]
    async fn stop_survives_a_stream_stopped_meanwhile() {
        // StopActivityStream refuses a stream that is no longer `started` with the modelled
        // InvalidDBClusterStateFault; the next DescribeDBClusters says it is stopped.
        let fake = FakeAws::new(|c| match c.operation.as_str() {
            "StopActivityStream" => {
                Answer::error_query(400, "InvalidDBClusterStateFault", "any text")
            }
            "DescribeDBClusters" => Answer::xml(200, &cluster(Some("stopped"))),
            _ => Answer::unexpected(),
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        let target = TargetRef::parse(crate::naming::TargetKind::Cluster, "db").unwrap();
        let mut db = database::observe(
            &FakeAws::new(|_| Answer::xml(200, &cluster(Some("started")))).clients(),
            &target,
        )
        .await
        .unwrap()
        .unwrap();
        db.stream.status = Status::Started;
        let result = stop(&ctx, &db).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            fake.operations(),
            ["StopActivityStream", "DescribeDBClusters"]
        );
    }

    #[test]
    fn starting_says_it_restarts_the_database_and_on_oracle_clears_the_audit_trail() {
        let mut d = crate::desired::tests::desired_started();
        assert!(
            compare(&d).notes.is_empty(),
            "a running stream is not restarted"
        );
        d.database.stream.status = Status::Stopped;
        let notes = compare(&d).notes;
        assert!(
            notes.iter().any(|n| n.contains("restarts the database")),
            "{notes:?}"
        );
        assert!(!notes.iter().any(|n| n.contains("Oracle")), "{notes:?}");
        d.database.engine = "oracle-ee".into();
        let notes = compare(&d).notes;
        assert!(
            notes
                .iter()
                .any(|n| n.contains("clears the existing audit data")),
            "{notes:?}"
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_when_the_stream_runs() {
        let fake = FakeAws::silent();
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        let plan = Planned::<StreamChange>::new("s", vec![]);
        let d = crate::desired::tests::desired_started();
        let status = start(&ctx, &d, &plan).await;
        assert!(matches!(status, Ok(Status::Started)), "{status:?}");
        assert!(
            wait_started(&ctx, &d.database, Status::Started)
                .await
                .is_ok()
        );
        assert!(fake.calls().is_empty(), "{:?}", fake.operations());
    }
}
