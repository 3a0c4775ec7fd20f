//! The database named by `--cluster` / `--instance`, as RDS describes it: what every command
//! reads first. Its activity stream is part of the description (the `activity-stream` resource,
//! `resource::activity_stream`, decides what to do with it).

use aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_sdk_rds::types::{ActivityStreamMode, ActivityStreamStatus};

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
    /// `available`, `creating` ... (a free string in the RDS API).
    pub status: String,
    /// Instances in the cluster (1 for an instance).
    pub members: usize,
    pub stream: StreamState,
}

/// The activity stream part of `DescribeDBClusters` / `DescribeDBInstances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// `Stopped` when RDS gives no status (a database that never had a stream).
    pub status: ActivityStreamStatus,
    pub kinesis_stream: Option<String>,
    pub kms_key: Option<String>,
    pub mode: Option<ActivityStreamMode>,
}

impl Default for StreamState {
    fn default() -> Self {
        Self {
            status: ActivityStreamStatus::Stopped,
            kinesis_stream: None,
            kms_key: None,
            mode: None,
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
                status: c.status().unwrap_or_default().to_owned(),
                members: c.db_cluster_members().len(),
                stream: StreamState {
                    status: c
                        .activity_stream_status()
                        .cloned()
                        .unwrap_or(ActivityStreamStatus::Stopped),
                    kinesis_stream: c.activity_stream_kinesis_stream_name().map(str::to_owned),
                    kms_key: c.activity_stream_kms_key_id().map(str::to_owned),
                    mode: c.activity_stream_mode().cloned(),
                },
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
                status: i.db_instance_status().unwrap_or_default().to_owned(),
                members: 1,
                stream: StreamState {
                    status: i
                        .activity_stream_status()
                        .cloned()
                        .unwrap_or(ActivityStreamStatus::Stopped),
                    kinesis_stream: i.activity_stream_kinesis_stream_name().map(str::to_owned),
                    kms_key: i.activity_stream_kms_key_id().map(str::to_owned),
                    mode: i.activity_stream_mode().cloned(),
                },
            }))
        }
    }
}
