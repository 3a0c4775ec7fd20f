//! CloudWatch's view of the pipeline, for `status`: how far Firehose's read of the activity
//! stream is behind, against the 24 h retention, Firehose processing and delivery success, the function's errors and throttles.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

use crate::aws::{Clients, Named as _};
use crate::resource::{Check, Level};

/// Kinesis keeps DAS records 24 h: an iterator this old is close to losing data.
const ITERATOR_AGE_FAIL: Duration = Duration::from_secs(12 * 3600);
const ITERATOR_AGE_WARN: Duration = Duration::from_secs(3600);

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check::new(name, level, detail)
}

/// The queries: (id, namespace, metric, dimension, statistic).
type Query = (
    &'static str,
    &'static str,
    &'static str,
    (&'static str, String),
    &'static str,
);

/// What `status` asks CloudWatch. The read lag is Firehose's own (`KinesisMillisBehindLatest`
/// of the delivery stream: "the number of milliseconds that the last read record is behind the
/// newest record in the Kinesis data stream", Firehose Developer Guide, "Monitoring with
/// CloudWatch metrics"), not the stream-wide `GetRecords.IteratorAgeMilliseconds`, which any
/// other reader (`das-setup tail --since 12h`) drives up.
fn queries(delivery: &str, function: &str) -> [Query; 5] {
    let firehose = || ("DeliveryStreamName", delivery.to_owned());
    let lambda = || ("FunctionName", function.to_owned());
    [
        (
            "iterator",
            "AWS/Firehose",
            "KinesisMillisBehindLatest",
            firehose(),
            "Maximum",
        ),
        (
            "processing",
            "AWS/Firehose",
            "ExecuteProcessing.Success",
            firehose(),
            "Average",
        ),
        (
            "delivery",
            "AWS/Firehose",
            "DeliveryToS3.Success",
            firehose(),
            "Average",
        ),
        ("errors", "AWS/Lambda", "Errors", lambda(), "Sum"),
        ("throttles", "AWS/Lambda", "Throttles", lambda(), "Sum"),
    ]
}

/// CloudWatch: how far Firehose's read of the activity stream is behind, against the 24 h
/// retention; Firehose processing and delivery; Lambda errors and throttles. No data is
/// UNKNOWN, not a failure (metrics arrive every 1-5 minutes).
pub async fn checks(
    clients: &Clients,
    delivery: &str,
    function: &str,
    since: Duration,
) -> Vec<Check> {
    let now = SystemTime::now();
    let start = now - since;
    let mut request = clients
        .cloudwatch
        .get_metric_data()
        .start_time(start.into())
        .end_time(now.into());
    for (id, namespace, metric, (name, value), stat) in queries(delivery, function) {
        request = request.metric_data_queries(
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(namespace)
                                .metric_name(metric)
                                .dimensions(Dimension::builder().name(name).value(value).build())
                                .build(),
                        )
                        .period(300)
                        .stat(stat)
                        .build(),
                )
                .build(),
        );
    }
    let result = request
        .send()
        .await
        .named("cloudwatch:GetMetricData", "the pipeline's metrics");
    let values: BTreeMap<String, Vec<f64>> = match result {
        Ok(out) => out
            .metric_data_results()
            .iter()
            .map(|r| (r.id().unwrap_or_default().to_owned(), r.values().to_vec()))
            .collect(),
        Err(e) => {
            let why = e
                .code
                .clone()
                .unwrap_or_else(|| "the answer was not CloudWatch's".into());
            return vec![check(
                "metrics",
                Level::Unknown,
                format!("cloudwatch:GetMetricData not available ({why})"),
            )];
        }
    };
    let get = |id: &str| values.get(id).filter(|v| !v.is_empty());
    let none = |name: &'static str| check(name, Level::Unknown, "no data points in the window yet");
    let mut out = Vec::new();
    out.push(
        match get("iterator").and_then(|v| v.iter().copied().reduce(f64::max)) {
            None => none("iterator-age"),
            Some(ms) => {
                let age = Duration::from_millis(ms.max(0.0) as u64);
                let text = format!(
                    "Firehose reads the activity stream {} behind its newest record (Kinesis keeps 24 h)",
                    crate::progress::seconds(age)
                );
                if age >= ITERATOR_AGE_FAIL {
                    check("iterator-age", Level::Fail, text)
                } else if age >= ITERATOR_AGE_WARN {
                    check("iterator-age", Level::Warn, text)
                } else {
                    check("iterator-age", Level::Ok, text)
                }
            }
        },
    );
    for (id, name, what) in [
        ("processing", "firehose-processing", "processing success"),
        ("delivery", "firehose-delivery", "delivery to S3 success"),
    ] {
        out.push(match get(id) {
            None => none(name),
            Some(v) => {
                let low = v.iter().copied().fold(f64::INFINITY, f64::min);
                if low < 1.0 {
                    check(
                        name,
                        Level::Warn,
                        format!("{what} fell to {:.0}% in the window", low * 100.0),
                    )
                } else {
                    check(name, Level::Ok, format!("{what} 100%"))
                }
            }
        });
    }
    for (id, name) in [
        ("errors", "function-errors"),
        ("throttles", "function-throttles"),
    ] {
        out.push(match get(id) {
            None => none(name),
            Some(v) => {
                let total: f64 = v.iter().sum();
                if total > 0.0 {
                    check(
                        name,
                        Level::Warn,
                        format!("{total:.0} in the window (Firehose retries them)"),
                    )
                } else {
                    check(name, Level::Ok, "none")
                }
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_lag_is_the_delivery_streams_not_the_streams() {
        // Regression: the stream-wide iterator age made `status` FAIL whenever another reader
        // (`tail --since 12h`) read old records.
        let q = queries("das-setup-demo", "das-setup-demo");
        let (id, namespace, metric, (dimension, value), _) = &q[0];
        assert_eq!(
            (*id, *namespace, *metric, *dimension, value.as_str()),
            (
                "iterator",
                "AWS/Firehose",
                "KinesisMillisBehindLatest",
                "DeliveryStreamName",
                "das-setup-demo"
            )
        );
        assert!(q.iter().all(|(_, ns, ..)| *ns != "AWS/Kinesis"));
    }
}
