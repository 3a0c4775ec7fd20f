//! The deployment as it stands: every resource of one database but the database and the
//! activity stream's key (read first: the rest is named after them), read concurrently, once per
//! command. `up`, `down`, `status` and `verify` all read it here.

use futures_util::future::join;

use das_processor::config::var;

use crate::aws::{AwsError, Clients};
use crate::naming::Names;
use crate::resource::alarms::{self, AlarmsState};
use crate::resource::bucket::{self, BucketState};
use crate::resource::catalog::{self, CatalogState};
use crate::resource::delivery_stream::{self, DeliveryState};
use crate::resource::function::{self, FunctionState};
use crate::resource::key::{self, KeyState};
use crate::resource::log_group::{self, LogGroupSpec, LogGroupState};
use crate::resource::role::{self, RoleState};
use crate::resource::topic::{self, TopicState};
use crate::resource::workgroup::{self, WorkgroupState};

/// The root of the prefix `up` gives the processor by default (`up --prefix`).
pub const DEFAULT_PREFIX: &str = "parsed/";

/// Every resource of a deployment but the database and the activity stream's key.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The key behind the signing key's alias (an interrupted `up` may have left one without
    /// it: `key::orphan` finds that one).
    pub signing_key: Option<KeyState>,
    /// The bucket observed: the one asked for, or the one the deployment writes to.
    pub bucket_name: String,
    pub bucket: BucketState,
    pub processor_role: Option<RoleState>,
    pub firehose_role: Option<RoleState>,
    pub function_logs: Option<LogGroupState>,
    pub firehose_logs: Option<LogGroupState>,
    pub function: Option<FunctionState>,
    pub delivery: Option<DeliveryState>,
    pub alerts_topic: Option<TopicState>,
    pub alarms: AlarmsState,
    /// The Glue database (and its `events` table) and the Athena workgroup of `query`.
    pub catalog: Option<CatalogState>,
    pub workgroup: Option<WorkgroupState>,
}

impl Deployment {
    /// The prefix the deployed function writes under; without a function, the one `up` gives
    /// a function of this database by default (`parsed/<database>/`).
    pub fn prefix(&self, database: &str) -> String {
        self.function
            .as_ref()
            .and_then(|f| f.environment.get(var::OUTPUT_PREFIX).cloned())
            .unwrap_or_else(|| das_processor::route::database_prefix(DEFAULT_PREFIX, database))
    }

    /// Any of das-setup's resources exists (the bucket and the log groups outlive `down`).
    pub fn any(&self) -> bool {
        self.function.is_some()
            || self.delivery.is_some()
            || self.processor_role.is_some()
            || self.firehose_role.is_some()
    }
}

/// The bucket the deployment writes to: the function's environment while it exists, else the
/// delivery stream's destination, else the derived name.
fn deployed_bucket(
    names: &Names,
    function: Option<&FunctionState>,
    delivery: Option<&DeliveryState>,
) -> String {
    function
        .and_then(|f| f.environment.get(var::OUTPUT_BUCKET).cloned())
        .or_else(|| {
            delivery
                .and_then(|d| d.destination.as_ref())
                .and_then(|d| d.bucket().map(str::to_owned))
        })
        .unwrap_or_else(|| names.bucket.clone())
}

/// Reads every resource concurrently. `bucket`: the one `up` will use; `None` for the one
/// the deployment writes to (read once the function and the delivery stream are known).
pub async fn observe(
    clients: &Clients,
    names: &Names,
    bucket: Option<&str>,
) -> Result<Deployment, AwsError> {
    let resources = async {
        let (
            (
                ((processor_role, firehose_role), (function_logs, firehose_logs)),
                (function, delivery),
            ),
            signing_key,
        ) = join(
            join(
                join(
                    join(
                        role::observe(clients, &names.processor_role, &names.role_policy),
                        role::observe(clients, &names.firehose_role, &names.role_policy),
                    ),
                    join(
                        log_group::observe(clients, LogGroupSpec::function(names)),
                        log_group::observe(clients, LogGroupSpec::firehose(names)),
                    ),
                ),
                join(
                    function::observe(clients, &names.function),
                    delivery_stream::observe(clients, &names.delivery_stream),
                ),
            ),
            key::observe(clients, &names.digest_key_alias),
        )
        .await;
        Ok::<_, AwsError>((
            signing_key?,
            processor_role?,
            firehose_role?,
            function_logs?,
            firehose_logs?,
            function?,
            delivery?,
        ))
    };
    let given = async {
        match bucket {
            Some(name) => Some(bucket::observe(clients, name).await),
            None => None,
        }
    };
    let (resources, (given, ((alerts_topic, alarms), (catalog, workgroup)))) = join(
        resources,
        join(
            given,
            join(
                join(
                    topic::observe(clients, &names.alerts_topic_arn),
                    alarms::observe(clients, names),
                ),
                join(
                    catalog::observe(clients, names),
                    workgroup::observe(clients, names),
                ),
            ),
        ),
    )
    .await;
    let alerts_topic = alerts_topic?;
    let alarms = alarms?;
    let catalog = catalog?;
    let workgroup = workgroup?;
    let (
        signing_key,
        processor_role,
        firehose_role,
        function_logs,
        firehose_logs,
        function,
        delivery,
    ) = resources?;
    let (bucket_name, bucket) = match (bucket, given) {
        (Some(name), Some(state)) => (name.to_owned(), state?),
        _ => {
            let name = deployed_bucket(names, function.as_ref(), delivery.as_ref());
            let state = bucket::observe(clients, &name).await?;
            (name, state)
        }
    };
    Ok(Deployment {
        signing_key,
        bucket_name,
        bucket,
        processor_role,
        firehose_role,
        function_logs,
        firehose_logs,
        function,
        delivery,
        alerts_topic,
        alarms,
        catalog,
        workgroup,
    })
}
