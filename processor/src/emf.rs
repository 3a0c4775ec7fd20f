//! The events-stored metric (`das-setup up --no-events-alarm HOURS`): after each invocation, one
//! line in CloudWatch's embedded metric format on standard output, which Lambda sends to the
//! function's log group and CloudWatch Logs turns into the metric `das-setup` / `EventsStored`
//! (dimension `FunctionName`), with no API call and no extra permission (CloudWatch User Guide,
//! "Specification: Embedded metric format"; "Using the embedded metric format with Lambda").
//! Counts only, never an event's content.

use serde_json::json;

/// The metric's namespace and name, and its dimension (the alarm names them too).
pub const NAMESPACE: &str = "das-setup";
pub const EVENTS_STORED: &str = "EventsStored";
pub const DIMENSION: &str = "FunctionName";

/// The line for `stored` events written by `function` at `timestamp_ms` (ms since the epoch).
pub fn events_stored(function: &str, stored: usize, timestamp_ms: u64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{ "Name": EVENTS_STORED, "Unit": "Count" }],
            }],
        },
        DIMENSION: function,
        EVENTS_STORED: stored,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's rules: `_aws` with a Timestamp in ms and CloudWatchMetrics; every
    /// dimension and metric named there is a member of the root, the metric a number.
    #[test]
    fn the_line_follows_the_embedded_metric_format() {
        let line = events_stored("das-setup-demo", 12, 1_796_000_000_123);
        assert!(!line.contains('\n'), "one log line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_796_000_000_123_u64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "das-setup");
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert_eq!(v[dimension.as_str().unwrap()], "das-setup-demo");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert_eq!(v[metric["Name"].as_str().unwrap()], 12);
        }
    }
}
