//! What `up` checks about the database before it changes anything: that AWS supports an
//! activity stream on it, so that an unsupported database is refused with the reason and the fix
//! instead of failing at `StartActivityStream` after the bucket, roles and function exist.
//!
//! Two sources, in this order:
//! - the shapes the RDS and Aurora User Guides rule out by name ("Supported Regions and DB
//!   engines for database activity streams", "Overview of Database Activity Streams"): other
//!   engines, Aurora Serverless v1 (`EngineMode` `serverless`) and v2 (`db.serverless`),
//!   Babelfish for Aurora PostgreSQL, RDS for Oracle read replicas, sync mode outside Aurora
//!   PostgreSQL, a cluster without instances;
//! - for the instance classes and engine versions, RDS itself: `DescribeOrderableDBInstanceOptions`
//!   answers `SupportedActivityStreamModes` per engine, version and class ("If Database Activity
//!   Streams isn't supported, the return value is an empty list", RDS API reference,
//!   `OrderableDBInstanceOption`). This follows AWS's tables as they change instead of copying
//!   them. A combination RDS no longer lists (a retired minor version) is not refused: the plan
//!   says support could not be confirmed, and `StartActivityStream` decides.

use std::collections::BTreeSet;

use aws_sdk_rds::types::Filter;

use crate::aws::{Clients, Named as _};
use crate::cli::StreamMode;
use crate::database::Database;
use crate::desired::stream_mode;
use crate::naming::TargetKind;
use crate::session::{Refusal, kind_word, refuse};

/// The Babelfish switch in an Aurora PostgreSQL cluster parameter group (Aurora User Guide,
/// "Creating a Babelfish for Aurora PostgreSQL DB cluster").
const BABELFISH: &str = "rds.babelfish_status";

/// Checks the database; `Ok` carries what the plan should say about support (empty when RDS
/// confirmed it).
pub async fn check(
    clients: &Clients,
    db: &Database,
    mode: StreamMode,
) -> Result<Vec<String>, Refusal> {
    check_shape(db, mode)?;
    if db.stream.running() {
        // RDS accepted this database already; refusing it now would only stop `up` from
        // repairing the rest of the pipeline.
        return Ok(Vec::new());
    }
    let classes = instance_classes(clients, db).await?;
    for (instance, class) in &classes {
        check_class(db, instance, class)?;
    }
    if db.engine == "aurora-postgresql" {
        check_babelfish(clients, db).await?;
    }
    let mut notes = Vec::new();
    let distinct: BTreeSet<&str> = classes.iter().map(|(_, c)| c.as_str()).collect();
    for class in distinct {
        let modes = orderable_modes(clients, db, class).await?;
        if let Some(note) = judge(db, class, modes.as_deref(), mode)? {
            notes.push(note);
        }
    }
    Ok(notes)
}

/// Engines, engine modes, topology and the stream's mode: what the description alone decides.
pub fn check_shape(db: &Database, mode: StreamMode) -> Result<(), Refusal> {
    let engine = db.engine.as_str();
    let supported = match db.kind {
        TargetKind::Cluster => engine == "aurora-postgresql" || engine == "aurora-mysql",
        TargetKind::Instance => engine.starts_with("oracle") || engine.starts_with("sqlserver"),
    };
    let named = format!("{} {}", kind_word(db.kind), db.id);
    if !supported {
        let hint = match db.kind {
            TargetKind::Cluster => {
                "activity streams exist for Aurora PostgreSQL and Aurora MySQL clusters, and for RDS for Oracle and SQL Server instances (--instance)"
            }
            TargetKind::Instance => {
                "instance streams exist for RDS for Oracle and SQL Server; for Aurora, pass the cluster with --cluster"
            }
        };
        return Err(refuse(format!("{named} runs {engine:?}: {hint}")));
    }
    if db.shape.engine_mode.as_deref() == Some("serverless") {
        return Err(refuse(format!(
            "{named} is Aurora Serverless v1 (engine mode serverless), which has no activity streams: move it to provisioned instances (r-class), then run up again"
        )));
    }
    if let Some(source) = &db.shape.replica_of {
        return Err(refuse(format!(
            "{named} is a read replica of {source}: RDS has no activity streams on read replicas; run up with --instance {source}"
        )));
    }
    if mode == StreamMode::Sync && engine != "aurora-postgresql" {
        return Err(refuse(format!(
            "--mode sync is supported on Aurora PostgreSQL only; {named} runs {engine}: use --mode async"
        )));
    }
    if db.kind == TargetKind::Cluster && db.members.is_empty() {
        return Err(refuse(format!(
            "{named} has no DB instance: an activity stream needs at least one (add an instance, then run up again)"
        )));
    }
    let stream = &db.stream;
    if stream.running()
        && let Some(current) = &stream.mode
        && *current != stream_mode(mode)
    {
        return Err(refuse(format!(
            "the activity stream of {named} is already {} in {} mode; changing the mode means stopping it first (das-setup down), which loses nothing stored but pauses auditing",
            stream.status.as_str(),
            current.as_str()
        )));
    }
    Ok(())
}

/// The classes named in the guides as unsupported, refused with their own reason.
fn check_class(db: &Database, instance: &str, class: &str) -> Result<(), Refusal> {
    if class == "db.serverless" {
        return Err(refuse(format!(
            "{} {}: instance {instance} is Aurora Serverless v2 (db.serverless), which has no activity streams; give the {} provisioned instances of a memory-optimized class (db.r6g.large or larger), then run up again",
            kind_word(db.kind),
            db.id,
            kind_word(db.kind)
        )));
    }
    Ok(())
}

/// `Ok(None)` when RDS confirms the mode on the class; a note when it lists nothing for the
/// combination; a refusal when it lists the combination without activity streams, or without
/// the mode asked for.
fn judge(
    db: &Database,
    class: &str,
    modes: Option<&[String]>,
    mode: StreamMode,
) -> Result<Option<String>, Refusal> {
    let what = format!(
        "{} {} ({} {} on {class})",
        kind_word(db.kind),
        db.id,
        db.engine,
        db.engine_version
    );
    let Some(modes) = modes else {
        return Ok(Some(format!(
            "RDS lists no orderable option for {} {} on {class}, so support could not be confirmed: StartActivityStream decides",
            db.engine, db.engine_version
        )));
    };
    if modes.is_empty() {
        let fix = if class.starts_with("db.t") {
            "burstable db.t* classes have none: modify the instances to a memory-optimized class such as db.r6g.large"
        } else {
            "see \"Supported DB instance classes\" in the activity streams chapter of the RDS or Aurora User Guide, then change the instance class or upgrade the engine version"
        };
        return Err(refuse(format!(
            "{what}: RDS supports no activity stream on this engine version and instance class; {fix}"
        )));
    }
    let wanted = stream_mode(mode);
    if !modes
        .iter()
        .any(|m| m.eq_ignore_ascii_case(wanted.as_str()))
    {
        return Err(refuse(format!(
            "{what}: RDS supports activity streams here in {} mode only, not {}; pass --mode {}",
            modes.join(", "),
            wanted.as_str().to_ascii_lowercase(),
            modes[0].to_ascii_lowercase()
        )));
    }
    Ok(None)
}

/// (instance id, class) of every instance that would be audited.
async fn instance_classes(
    clients: &Clients,
    db: &Database,
) -> Result<Vec<(String, String)>, Refusal> {
    const ACTION: &str = "rds:DescribeDBInstances";
    if let Some(class) = &db.shape.instance_class {
        return Ok(vec![(db.id.clone(), class.clone())]);
    }
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .rds
            .describe_db_instances()
            .filters(
                Filter::builder()
                    .name("db-cluster-id")
                    .values(&db.id)
                    .build(),
            )
            .set_marker(marker.take())
            .send()
            .await
            .named(ACTION, &db.id)?;
        for i in page.db_instances() {
            if let (Some(id), Some(class)) = (i.db_instance_identifier(), i.db_instance_class()) {
                out.push((id.to_owned(), class.to_owned()));
            }
        }
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// The union of `SupportedActivityStreamModes` over RDS's orderable options for the database's
/// engine and version on `class`; `None` when RDS lists no option at all.
async fn orderable_modes(
    clients: &Clients,
    db: &Database,
    class: &str,
) -> Result<Option<Vec<String>>, Refusal> {
    const ACTION: &str = "rds:DescribeOrderableDBInstanceOptions";
    let mut modes: Vec<String> = Vec::new();
    let mut listed = false;
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .rds
            .describe_orderable_db_instance_options()
            .engine(&db.engine)
            .engine_version(&db.engine_version)
            .db_instance_class(class)
            .set_marker(marker.take())
            .send()
            .await
            .named(
                ACTION,
                &format!("{} {} {class}", db.engine, db.engine_version),
            )?;
        for option in page.orderable_db_instance_options() {
            listed = true;
            for m in option.supported_activity_stream_modes() {
                if !modes.contains(m) {
                    modes.push(m.clone());
                }
            }
        }
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(listed.then_some(modes)),
        }
    }
}

/// Babelfish for Aurora PostgreSQL has no activity streams (Aurora User Guide, "Supported Regions
/// and Aurora DB engines for database activity streams"). It is on when the cluster's parameter
/// group sets `rds.babelfish_status` to `on`; a `default.*` group cannot be changed, so it is
/// off there.
async fn check_babelfish(clients: &Clients, db: &Database) -> Result<(), Refusal> {
    const ACTION: &str = "rds:DescribeDBClusterParameters";
    let Some(group) = db.shape.parameter_group.as_deref() else {
        return Ok(());
    };
    if group.starts_with("default.") {
        return Ok(());
    }
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .rds
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .source("user")
            .set_marker(marker.take())
            .send()
            .await
            .named(ACTION, group)?;
        let on = page.parameters().iter().any(|p| {
            p.parameter_name() == Some(BABELFISH)
                && p.parameter_value()
                    .is_some_and(|v| v.eq_ignore_ascii_case("on"))
        });
        if on {
            return Err(refuse(format!(
                "cluster {} runs Babelfish ({BABELFISH} is on in its parameter group {group}): Aurora has no activity streams for Babelfish clusters",
                db.id
            )));
        }
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::Shape;
    use crate::desired::StreamState;

    fn db(kind: TargetKind, engine: &str, members: usize) -> Database {
        Database {
            kind,
            id: "x".into(),
            arn: "arn:aws:rds:r:1:cluster:x".into(),
            resource_id: "cluster-X".into(),
            engine: engine.into(),
            engine_version: "16.4".into(),
            status: "available".into(),
            members: (0..members).map(|i| format!("x-{i}")).collect(),
            shape: Shape::default(),
            stream: StreamState::default(),
            master_user: None,
        }
    }

    #[test]
    fn unsupported_engines_shapes_modes_and_empty_clusters_are_refused_naming_why() {
        let ok = [
            (TargetKind::Cluster, "aurora-postgresql", StreamMode::Sync),
            (TargetKind::Cluster, "aurora-mysql", StreamMode::Async),
            (TargetKind::Instance, "oracle-ee", StreamMode::Async),
            (TargetKind::Instance, "sqlserver-se", StreamMode::Async),
        ];
        for (kind, engine, mode) in ok {
            check_shape(&db(kind, engine, 1), mode).unwrap();
        }
        let mut serverless = db(TargetKind::Cluster, "aurora-mysql", 0);
        serverless.shape.engine_mode = Some("serverless".into());
        let mut replica = db(TargetKind::Instance, "oracle-ee", 1);
        replica.shape.replica_of = Some("primary".into());
        let refused = [
            (
                db(TargetKind::Cluster, "aurora-mysql", 1),
                StreamMode::Sync,
                "--mode sync",
            ),
            (
                db(TargetKind::Cluster, "mysql", 1),
                StreamMode::Async,
                "runs \"mysql\"",
            ),
            (
                db(TargetKind::Instance, "postgres", 1),
                StreamMode::Async,
                "--cluster",
            ),
            (
                db(TargetKind::Cluster, "aurora-postgresql", 0),
                StreamMode::Async,
                "no DB instance",
            ),
            (serverless, StreamMode::Async, "Aurora Serverless v1"),
            (replica, StreamMode::Async, "read replica of primary"),
        ];
        for (d, mode, needle) in refused {
            let e = check_shape(&d, mode).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let mut started = db(TargetKind::Cluster, "aurora-postgresql", 1);
        started.stream.status = aws_sdk_rds::types::ActivityStreamStatus::Started;
        started.stream.mode = Some(aws_sdk_rds::types::ActivityStreamMode::Async);
        let e = check_shape(&started, StreamMode::Sync)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already started in async mode"), "{e}");
        check_shape(&started, StreamMode::Async).unwrap();
    }

    #[test]
    fn rds_orderable_options_decide_classes_and_versions() {
        let d = db(TargetKind::Cluster, "aurora-postgresql", 1);
        let both = vec!["async".to_owned(), "sync".to_owned()];
        assert_eq!(
            judge(&d, "db.r6g.large", Some(&both), StreamMode::Sync).unwrap(),
            None
        );
        let e = judge(&d, "db.t4g.medium", Some(&[]), StreamMode::Async)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("db.t4g.medium") && e.contains("burstable"),
            "{e}"
        );
        let e = judge(&d, "db.r5.large", Some(&[]), StreamMode::Async)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("16.4") && e.contains("Supported DB instance classes"),
            "{e}"
        );
        let only_async = vec!["async".to_owned()];
        let e = judge(&d, "db.r5.large", Some(&only_async), StreamMode::Sync)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("async mode only") && e.contains("--mode async"),
            "{e}"
        );
        let note = judge(&d, "db.r5.large", None, StreamMode::Async)
            .unwrap()
            .unwrap();
        assert!(note.contains("could not be confirmed"), "{note}");
        let e = check_class(&d, "x-0", "db.serverless")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Serverless v2"), "{e}");
    }

    #[tokio::test]
    async fn check_reads_every_member_class_and_babelfish_and_refuses_a_burstable_member() {
        use crate::resource::testing::{Answer, FakeAws};
        let instances = |marker: &str, id: &str, class: &str| {
            format!(
                "<DescribeDBInstancesResponse><DescribeDBInstancesResult>{marker}<DBInstances><DBInstance>\
                 <DBInstanceIdentifier>{id}</DBInstanceIdentifier><DBInstanceClass>{class}</DBInstanceClass>\
                 </DBInstance></DBInstances></DescribeDBInstancesResult></DescribeDBInstancesResponse>"
            )
        };
        let options = |modes: &str| {
            format!(
                "<DescribeOrderableDBInstanceOptionsResponse><DescribeOrderableDBInstanceOptionsResult>\
                 <OrderableDBInstanceOptions><OrderableDBInstanceOption><Engine>aurora-postgresql</Engine>\
                 <SupportedActivityStreamModes>{modes}</SupportedActivityStreamModes></OrderableDBInstanceOption>\
                 </OrderableDBInstanceOptions></DescribeOrderableDBInstanceOptionsResult></DescribeOrderableDBInstanceOptionsResponse>"
            )
        };
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            // Two pages: the second member is a burstable writer.
            "DescribeDBInstances" if !c.body.contains("Marker=") => Answer::xml(
                200,
                &instances("<Marker>m1</Marker>", "x-0", "db.r6g.large"),
            ),
            "DescribeDBInstances" => Answer::xml(200, &instances("", "x-1", "db.t4g.medium")),
            "DescribeDBClusterParameters" => Answer::xml(
                200,
                "<DescribeDBClusterParametersResponse><DescribeDBClusterParametersResult><Parameters>\
                 <Parameter><ParameterName>rds.babelfish_status</ParameterName><ParameterValue>off</ParameterValue></Parameter>\
                 </Parameters></DescribeDBClusterParametersResult></DescribeDBClusterParametersResponse>",
            ),
            "DescribeOrderableDBInstanceOptions" if c.body.contains("db.t4g.medium") => {
                Answer::xml(200, &options(""))
            }
            "DescribeOrderableDBInstanceOptions" => {
                Answer::xml(200, &options("<member>async</member><member>sync</member>"))
            }
            _ => Answer::unexpected(),
        });
        let mut d = db(TargetKind::Cluster, "aurora-postgresql", 2);
        d.shape.parameter_group = Some("mine".into());
        let e = check(&fake.clients(), &d, StreamMode::Async)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("db.t4g.medium") && e.contains("burstable"),
            "{e}"
        );
        let ops = fake.operations();
        assert_eq!(
            ops,
            [
                "DescribeDBInstances",
                "DescribeDBInstances",
                "DescribeDBClusterParameters",
                "DescribeOrderableDBInstanceOptions",
                "DescribeOrderableDBInstanceOptions"
            ],
            "{ops:?}"
        );
    }

    #[tokio::test]
    async fn a_running_stream_is_not_judged_again() {
        use crate::resource::testing::{Answer, FakeAws};
        let mut d = db(TargetKind::Cluster, "aurora-postgresql", 1);
        d.stream.status = aws_sdk_rds::types::ActivityStreamStatus::Started;
        let fake = FakeAws::new(|_| Answer::unexpected());
        assert_eq!(
            check(&fake.clients(), &d, StreamMode::Async).await.unwrap(),
            Vec::<String>::new()
        );
        assert!(fake.operations().is_empty());
    }

    #[tokio::test]
    async fn babelfish_on_is_refused() {
        use crate::resource::testing::{Answer, FakeAws};
        let fake = FakeAws::new(|c| match c.operation.as_str() {
            "DescribeDBClusterParameters" => Answer::xml(
                200,
                "<DescribeDBClusterParametersResponse><DescribeDBClusterParametersResult><Parameters>\
                 <Parameter><ParameterName>rds.babelfish_status</ParameterName><ParameterValue>on</ParameterValue></Parameter>\
                 </Parameters></DescribeDBClusterParametersResult></DescribeDBClusterParametersResponse>",
            ),
            _ => Answer::unexpected(),
        });
        let mut d = db(TargetKind::Cluster, "aurora-postgresql", 1);
        d.shape.parameter_group = Some("bbf".into());
        let e = check_babelfish(&fake.clients(), &d)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("Babelfish") && e.contains("bbf"), "{e}");
        d.shape.parameter_group = Some("default.aurora-postgresql16".into());
        check_babelfish(&FakeAws::new(|_| Answer::unexpected()).clients(), &d)
            .await
            .unwrap();
    }
}
