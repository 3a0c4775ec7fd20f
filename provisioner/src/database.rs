//! The database named by `--cluster` / `--instance`, as RDS describes it: what every command
//! reads first. Its activity stream is part of the description (the `activity-stream` resource,
//! `resource::activity_stream`, decides what to do with it).

use aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_sdk_rds::types::{ActivityStreamMode, ActivityStreamPolicyStatus, ActivityStreamStatus};

use crate::aws::{AwsError, Clients, Named as _, required_str};
use crate::naming::{TargetKind, TargetRef};

/// The database as RDS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub kind: TargetKind,
    pub id: String,
    pub arn: String,
    /// `cluster-...` / `db-...`: names the Kinesis stream and the KMS encryption context.
    pub resource_id: String,
    pub engine: String,
    /// `EngineVersion`, e.g. `16.4` or `8.0.mysql_aurora.3.08.0`.
    pub engine_version: String,
    /// `available`, `creating` ... (a free string in the RDS API).
    pub status: String,
    /// The DB instances: the cluster's members, or the instance itself.
    pub members: Vec<String>,
    /// What makes a database a shape activity streams do not support (the preflight reads it).
    pub shape: Shape,
    pub stream: StreamState,
    /// `MasterUsername`: the user alert rules' `master_user` names.
    pub master_user: Option<String>,
}

/// The parts of the description that decide whether activity streams are supported at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// A cluster's `EngineMode`: `provisioned`, `serverless` (Aurora Serverless v1) ...
    pub engine_mode: Option<String>,
    /// An instance's `DBInstanceClass` (a cluster's are its members').
    pub instance_class: Option<String>,
    /// An instance's `ReadReplicaSourceDBInstanceIdentifier`: it is a read replica.
    pub replica_of: Option<String>,
    /// A cluster's `DBClusterParameterGroup` (Babelfish is turned on there).
    pub parameter_group: Option<String>,
}

/// The activity stream part of `DescribeDBClusters` / `DescribeDBInstances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// `Stopped` when RDS gives no status (a database that never had a stream).
    pub status: ActivityStreamStatus,
    pub kinesis_stream: Option<String>,
    pub kms_key: Option<String>,
    pub mode: Option<ActivityStreamMode>,
    /// RDS for Oracle and SQL Server: the audit policy's lock (`None` for clusters).
    pub policy: Option<ActivityStreamPolicyStatus>,
}

impl Default for StreamState {
    fn default() -> Self {
        Self {
            status: ActivityStreamStatus::Stopped,
            kinesis_stream: None,
            kms_key: None,
            mode: None,
            policy: None,
        }
    }
}

impl StreamState {
    /// Started or starting: records flow, or soon will.
    pub fn running(&self) -> bool {
        matches!(
            self.status,
            ActivityStreamStatus::Started | ActivityStreamStatus::Starting
        )
    }
}

impl Database {
    /// The encryption context key DAS uses with KMS for this kind of database.
    pub fn context_key(&self) -> &'static str {
        match self.kind {
            TargetKind::Cluster => "aws:rds:dbc-id",
            TargetKind::Instance => "aws:rds:db-id",
        }
    }

    /// The Kinesis stream RDS creates for the activity stream.
    pub fn stream_name(&self) -> String {
        format!("aws-rds-das-{}", self.resource_id)
    }
}

/// The database named by `target`; `Ok(None)` when RDS does not know it. An answer without
/// the ARN or the resource id is an error.
pub async fn observe(clients: &Clients, target: &TargetRef) -> Result<Option<Database>, AwsError> {
    match target.kind {
        TargetKind::Cluster => {
            const ACTION: &str = "rds:DescribeDBClusters";
            let what = format!("cluster {}", target.id);
            let out = clients
                .rds
                .describe_db_clusters()
                .db_cluster_identifier(&target.id)
                .send()
                .await
                .or_absent(ACTION, &what, |e| {
                    matches!(e, DescribeDBClustersError::DbClusterNotFoundFault(_))
                })?;
            let Some(c) = out.as_ref().and_then(|o| o.db_clusters().first()) else {
                return Ok(None);
            };
            Ok(Some(Database {
                kind: target.kind,
                id: target.id.clone(),
                arn: required_str(c.db_cluster_arn(), ACTION, &what, "DBClusterArn")?,
                resource_id: required_str(
                    c.db_cluster_resource_id(),
                    ACTION,
                    &what,
                    "DbClusterResourceId",
                )?,
                engine: c.engine().unwrap_or_default().to_owned(),
                engine_version: c.engine_version().unwrap_or_default().to_owned(),
                status: c.status().unwrap_or_default().to_owned(),
                members: c
                    .db_cluster_members()
                    .iter()
                    .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
                    .collect(),
                shape: Shape {
                    engine_mode: c.engine_mode().map(str::to_owned),
                    instance_class: None,
                    replica_of: None,
                    parameter_group: c.db_cluster_parameter_group().map(str::to_owned),
                },
                stream: StreamState {
                    status: c
                        .activity_stream_status()
                        .cloned()
                        .unwrap_or(ActivityStreamStatus::Stopped),
                    kinesis_stream: c.activity_stream_kinesis_stream_name().map(str::to_owned),
                    kms_key: c.activity_stream_kms_key_id().map(str::to_owned),
                    mode: c.activity_stream_mode().cloned(),
                    policy: None,
                },
                master_user: c.master_username().map(str::to_owned),
            }))
        }
        TargetKind::Instance => {
            const ACTION: &str = "rds:DescribeDBInstances";
            let what = format!("instance {}", target.id);
            let out = clients
                .rds
                .describe_db_instances()
                .db_instance_identifier(&target.id)
                .send()
                .await
                .or_absent(ACTION, &what, |e| {
                    matches!(e, DescribeDBInstancesError::DbInstanceNotFoundFault(_))
                })?;
            let Some(i) = out.as_ref().and_then(|o| o.db_instances().first()) else {
                return Ok(None);
            };
            Ok(Some(Database {
                kind: target.kind,
                id: target.id.clone(),
                arn: required_str(i.db_instance_arn(), ACTION, &what, "DBInstanceArn")?,
                resource_id: required_str(i.dbi_resource_id(), ACTION, &what, "DbiResourceId")?,
                engine: i.engine().unwrap_or_default().to_owned(),
                engine_version: i.engine_version().unwrap_or_default().to_owned(),
                status: i.db_instance_status().unwrap_or_default().to_owned(),
                members: vec![target.id.clone()],
                shape: Shape {
                    engine_mode: None,
                    instance_class: i.db_instance_class().map(str::to_owned),
                    replica_of: i
                        .read_replica_source_db_instance_identifier()
                        .map(str::to_owned),
                    parameter_group: None,
                },
                stream: StreamState {
                    status: i
                        .activity_stream_status()
                        .cloned()
                        .unwrap_or(ActivityStreamStatus::Stopped),
                    kinesis_stream: i.activity_stream_kinesis_stream_name().map(str::to_owned),
                    kms_key: i.activity_stream_kms_key_id().map(str::to_owned),
                    mode: i.activity_stream_mode().cloned(),
                    policy: i.activity_stream_policy_status().cloned(),
                },
                master_user: i.master_username().map(str::to_owned),
            }))
        }
    }
}
