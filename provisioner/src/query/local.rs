//! The local engine: Apache DataFusion over the objects of the window's partitions, read with the
//! same S3 client (credentials, endpoint, retries) as every other das-setup call.
//!
//! Why not DataFusion's own `ListingTable` over `object_store`: that would be a second HTTP
//! stack and a second credential chain (object_store's), which does not read AWS profiles the
//! way the SDK does (SSO, credential_process), and lists the whole table's prefix. This table
//! lists only the window's hours of the categories a query can match, S3 listing being in key
//! order (ListObjectsV2 API reference: "returned in UTF-8 binary order"): one listing per
//! category, starting at the window's first hour and stopping past its last.
//!
//! Memory is bounded: objects are fetched a few at a time per partition, each decoded into one
//! Arrow batch of only the columns the query reads and handed on; DataFusion's memory pool
//! (`MEMORY_LIMIT`) bounds what sorts and aggregations hold, spilling to disk beyond it.

use std::fmt;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use das_processor::classify::Category;
use das_processor::route::UtcHour;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::scalar::ScalarValue;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};

use super::table::{self, Decoder, Partition};
use crate::aws::{AwsError, Named as _};

/// Objects fetched at once per partition.
const FETCHES_PER_PARTITION: usize = 8;

/// What DataFusion's sorts, joins and aggregations may hold before they spill to disk.
pub const MEMORY_LIMIT: usize = 512 * 1024 * 1024;

/// An hour range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub first: UtcHour,
    pub last: UtcHour,
}

impl Hours {
    /// The hours of `[since, until]` (Unix milliseconds).
    pub fn of(since_millis: i64, until_millis: i64) -> Self {
        Self {
            first: UtcHour::from_epoch_millis(since_millis),
            last: UtcHour::from_epoch_millis(until_millis),
        }
    }

    /// How many hours.
    pub fn len(&self) -> i64 {
        (self.last.start_millis() - self.first.start_millis()) / 3_600_000 + 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }
}

/// One object of the window, with the partition values its key gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub partition: Partition,
}

/// Where the deployment's events are.
#[derive(Debug, Clone)]
pub struct Location {
    pub bucket: String,
    /// The deployment's prefix (`<root><database>/`).
    pub prefix: String,
}

/// The partition values of a key under `prefix`, if it is an event object of one of `hours`:
/// `<prefix><CATEGORY>/<yyyy>/<MM>/<dd>/<HH>/<name>.json.gz`.
pub fn partition_of(prefix: &str, key: &str, hours: &Hours) -> Option<Partition> {
    let rest = key.strip_prefix(prefix)?;
    let (category, rest) = rest.split_once('/')?;
    Category::ALL.iter().find(|c| c.as_str() == category)?;
    let hour_text = rest.get(..13)?;
    let hour = UtcHour::from_folder(hour_text)?;
    let name = rest.get(14..)?;
    let in_window = hour >= hours.first && hour <= hours.last;
    let slash = rest.as_bytes().get(13) == Some(&b'/');
    (in_window && slash && name.ends_with(".json.gz") && !name.contains('/')).then(|| Partition {
        category: category.to_owned(),
        hour: hour_text.to_owned(),
    })
}

/// The categories a query's filters leave: `category = 'X'`, `category IN (...)`, and `OR`s of
/// them; every category when the filters say nothing about it.
pub fn categories_of(filters: &[Expr]) -> Vec<Category> {
    let mut keep: Vec<Category> = Category::ALL.to_vec();
    for f in filters {
        if let Some(values) = category_values(f) {
            keep.retain(|c| values.iter().any(|v| v == c.as_str()));
        }
    }
    keep
}

/// The category values an expression allows, when it restricts only `category` to literals.
fn category_values(e: &Expr) -> Option<Vec<String>> {
    let is_category =
        |e: &Expr| matches!(e, Expr::Column(c) if c.name == table::PARTITION_COLUMNS[0]);
    let literal = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _) => {
            Some(s.clone())
        }
        _ => None,
    };
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if is_category(&b.left) {
                literal(&b.right).map(|v| vec![v])
            } else if is_category(&b.right) {
                literal(&b.left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::BinaryExpr(b) if b.op == Operator::Or => {
            let mut l = category_values(&b.left)?;
            l.extend(category_values(&b.right)?);
            Some(l)
        }
        Expr::InList(list) if !list.negated && is_category(&list.expr) => {
            list.list.iter().map(literal).collect()
        }
        _ => None,
    }
}

/// The objects of the window under the deployment's prefix, for the given categories.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    at: &Location,
    hours: &Hours,
    categories: &[Category],
) -> Result<Vec<Object>, AwsError> {
    let listings = categories.iter().copied().map(|category| async move {
        let folder = format!("{}{}/", at.prefix, category.as_str());
        // Every key of an earlier hour sorts before `<folder><yyyy/MM/dd/HH of the first hour>`
        // and every key of the first hour after it (it is their prefix).
        let start_after = format!("{folder}{}", hours.first);
        let what = format!("s3://{}/{folder}", at.bucket);
        let mut out = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = s3
                .list_objects_v2()
                .bucket(&at.bucket)
                .prefix(&folder)
                .start_after(&start_after)
                .set_continuation_token(token)
                .send()
                .await
                .named("s3:ListBucket", &what)?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                match partition_of(&at.prefix, key, hours) {
                    Some(partition) => out.push(Object {
                        key: key.to_owned(),
                        partition,
                    }),
                    None => {
                        // Keys sort by hour: the first one past the window ends the listing.
                        let past = key
                            .strip_prefix(&folder)
                            .and_then(|r| r.get(..13))
                            .and_then(UtcHour::from_folder)
                            .is_some_and(|h| h > hours.last);
                        if past {
                            break 'pages;
                        }
                    }
                }
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok::<_, AwsError>(out)
    });
    let mut all: Vec<Object> = stream::iter(listings)
        .buffer_unordered(4)
        .try_collect::<Vec<Vec<Object>>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(all)
}

/// The `events` table of one deployment's window.
pub struct EventsTable {
    s3: aws_sdk_s3::Client,
    at: Location,
    hours: Hours,
    schema: SchemaRef,
    stats: Arc<Stats>,
}

impl fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsTable")
            .field("bucket", &self.at.bucket)
            .field("prefix", &self.at.prefix)
            .field("hours", &self.hours)
            .finish_non_exhaustive()
    }
}

impl EventsTable {
    pub fn new(s3: aws_sdk_s3::Client, at: Location, hours: Hours) -> Self {
        Self {
            s3,
            at,
            hours,
            schema: table::schema(),
            stats: Arc::default(),
        }
    }

    /// What the scans read (a query may scan the table more than once).
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// `category` filters prune the listing; DataFusion still applies them (Inexact).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match category_values(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let categories = categories_of(filters);
        let objects = list(&self.s3, &self.at, &self.hours, &categories)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let decoder = Arc::new(
            Decoder::new(projection.map(Vec::as_slice))
                .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?,
        );
        let n = state.config().target_partitions().max(1);
        let mut shares: Vec<Vec<Object>> = vec![Vec::new(); n];
        for (i, o) in objects.into_iter().enumerate() {
            shares[i % n].push(o);
        }
        let partitions: Vec<Arc<dyn PartitionStream>> = shares
            .into_iter()
            .map(|objects| {
                Arc::new(Share {
                    s3: self.s3.clone(),
                    bucket: self.at.bucket.clone(),
                    objects,
                    decoder: Arc::clone(&decoder),
                    stats: Arc::clone(&self.stats),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        let exec = StreamingTableExec::try_new(
            Arc::clone(decoder.schema()),
            partitions,
            None,
            Vec::new(),
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}

/// One partition's share of the objects.
#[derive(Debug)]
struct Share {
    s3: aws_sdk_s3::Client,
    bucket: String,
    objects: Vec<Object>,
    decoder: Arc<Decoder>,
    stats: Arc<Stats>,
}

/// What the scans of one query read.
#[derive(Debug, Default)]
pub struct Stats {
    objects: AtomicUsize,
    bytes: AtomicU64,
}

/// [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub objects: usize,
    /// Compressed, as stored.
    pub bytes: u64,
}

impl Stats {
    pub fn snapshot(&self) -> Read {
        Read {
            objects: self.objects.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Why one object could not be read: names the object, never its content.
#[derive(Debug, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct ObjectError {
    bucket: String,
    key: String,
    reason: String,
}

impl PartitionStream for Share {
    fn schema(&self) -> &SchemaRef {
        self.decoder.schema()
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let s3 = self.s3.clone();
        let bucket = self.bucket.clone();
        let decoder = Arc::clone(&self.decoder);
        let stats = Arc::clone(&self.stats);
        let batches = stream::iter(self.objects.clone())
            .map(move |o| {
                let (s3, bucket, decoder) = (s3.clone(), bucket.clone(), Arc::clone(&decoder));
                let stats = Arc::clone(&stats);
                async move {
                    let fail = |reason: String| {
                        DataFusionError::External(Box::new(ObjectError {
                            bucket: bucket.clone(),
                            key: o.key.clone(),
                            reason,
                        }))
                    };
                    // An object deleted since the listing (a lifecycle rule expiring it) is
                    // no longer part of the trail: no rows.
                    let Some(body) = crate::stored::get(&s3, &bucket, &o.key)
                        .await
                        .map_err(|e| DataFusionError::External(Box::new(e)))?
                    else {
                        return Ok(RecordBatch::new_empty(Arc::clone(decoder.schema())));
                    };
                    stats.objects.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                    // Decompressing and decoding are CPU work: off the runtime's threads.
                    tokio::task::spawn_blocking(move || {
                        let text = gunzip(&body).map_err(|e| format!("not gzip: {e}"))?;
                        decoder
                            .decode(&text, &o.partition)
                            .map_err(|e| format!("not the processor's NDJSON: {e}"))
                    })
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(fail)
                }
            })
            .buffered(FETCHES_PER_PARTITION);
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(self.decoder.schema()),
            batches,
        ))
    }
}

/// The processor writes gzip (one member; several are read as one text, as `gzip -d` does).
fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(body.len() * 8);
    flate2::read::MultiGzDecoder::new(body).read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn hours(first: &str, last: &str) -> Hours {
        Hours {
            first: UtcHour::from_folder(first).unwrap(),
            last: UtcHour::from_folder(last).unwrap(),
        }
    }

    #[test]
    fn only_event_objects_of_the_window_have_a_partition() {
        let h = hours("2026/12/06/10", "2026/12/06/12");
        let p = "parsed/demo/";
        let part = partition_of(p, "parsed/demo/DDL/2026/12/06/11/b-1.json.gz", &h).unwrap();
        assert_eq!(
            part,
            Partition {
                category: "DDL".into(),
                hour: "2026/12/06/11".into()
            }
        );
        for key in [
            "parsed/demo/DDL/2026/12/06/09/b.json.gz",     // before
            "parsed/demo/DDL/2026/12/06/13/b.json.gz",     // after
            "parsed/other/DDL/2026/12/06/11/b.json.gz",    // another database
            "parsed/demo/_manifests/2026/12/06/11/b.json", // not an event object
            "parsed/demo/NOPE/2026/12/06/11/b.json.gz",    // not a category
            "parsed/demo/DDL/2026/12/06/11/x/b.json.gz",   // deeper
            "parsed/demo/DDL/2026/12/06/11b.json.gz",
        ] {
            assert_eq!(partition_of(p, key, &h), None, "{key}");
        }
        assert_eq!(h.len(), 3);
        assert_eq!(Hours::of(0, 3_600_000 * 24 - 1).len(), 24);
    }

    #[test]
    fn category_filters_prune_and_others_do_not() {
        let all = Category::ALL.to_vec();
        assert_eq!(categories_of(&[]), all);
        assert_eq!(
            categories_of(&[col("category").eq(lit("DDL"))]),
            [Category::Ddl]
        );
        assert_eq!(
            categories_of(&[lit("DCL")
                .eq(col("category"))
                .or(col("category").eq(lit("DDL")))]),
            [Category::Ddl, Category::Dcl]
        );
        assert_eq!(
            categories_of(&[col("category").in_list(vec![lit("AUTH_FAILURE"), lit("DML")], false)]),
            [Category::Dml, Category::AuthFailure]
        );
        // Negations, other columns and mixed ORs say nothing: every category is read.
        assert_eq!(
            categories_of(&[col("category").in_list(vec![lit("DDL")], true)]),
            all
        );
        assert_eq!(categories_of(&[col("dbusername").eq(lit("DDL"))]), all);
        assert_eq!(
            categories_of(&[col("category")
                .eq(lit("DDL"))
                .or(col("dbusername").eq(lit("x")))]),
            all
        );
        // Two filters: both apply.
        assert_eq!(
            categories_of(&[
                col("category").in_list(vec![lit("DDL"), lit("DCL")], false),
                col("category").eq(lit("DCL"))
            ]),
            [Category::Dcl]
        );
    }
}
