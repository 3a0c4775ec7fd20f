//! AWS Security Hub findings (`das-setup up --security-hub`): each high or critical alert as a
//! finding in the AWS Security Finding Format (ASFF), imported with `BatchImportFindings` into
//! the account's own "default" product (Security Hub User Guide, "Using custom product
//! integrations to send findings to AWS Security Hub"). Pure: the request is built here, sent by
//! `aws.rs`.
//!
//! A finding's `Id` is the alert's id, and `CreatedAt` and `UpdatedAt` are the event's time, so
//! a retried batch imports the same findings again, which Security Hub treats as the same
//! finding, not a new one ("If a finding provider sends a finding with the same Id ... Security
//! Hub updates the finding"; ASFF `Id`).

use serde_json::{Value, json};

use crate::notify::Notice;

/// ASFF's schema version (ASFF `SchemaVersion`: "2018-10-08").
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// The severities sent to Security Hub (issue 18: high and critical matches).
pub const SEVERITIES: [&str; 2] = ["high", "critical"];
/// ASFF limits (BatchImportFindings: the `Title` at most 256 characters, `Description` 1,024,
/// a `ProductFields` value 2,048).
const TITLE_CHARS: usize = 256;
const DESCRIPTION_CHARS: usize = 1024;
const FIELD_CHARS: usize = 2048;
/// A finding type of ASFF's taxonomy (namespace/category): "Unusual Behaviors/Database".
const FINDING_TYPE: &str = "Unusual Behaviors/Database";

/// Where findings go, and about what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubTarget {
    pub account: String,
    pub region: String,
    pub partition: String,
    /// The database's ARN (`DAS_DATABASE_ARN`): the finding's resource.
    pub database_arn: String,
}

impl HubTarget {
    /// From the database's ARN: `arn:<partition>:rds:<region>:<account>:cluster:<id>` or
    /// `...:db:<id>`; `None` when it is not one.
    pub fn from_database_arn(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        match parts.as_slice() {
            [
                "arn",
                partition,
                "rds",
                region,
                account,
                "cluster" | "db",
                id,
            ] if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !id.is_empty() =>
            {
                Some(Self {
                    account: (*account).to_owned(),
                    region: (*region).to_owned(),
                    partition: (*partition).to_owned(),
                    database_arn: arn.to_owned(),
                })
            }
            _ => None,
        }
    }

    /// The account's own product, which every account may import its findings into.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition, self.region, self.account, self.account
        )
    }

    /// ASFF's resource type of the database.
    fn resource_type(&self) -> &'static str {
        if self.database_arn.contains(":cluster:") {
            "AwsRdsDbCluster"
        } else {
            "AwsRdsDbInstance"
        }
    }
}

/// Whether an alert of this severity becomes a finding.
pub fn wanted(severity: &str) -> bool {
    SEVERITIES.contains(&severity)
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The ASFF finding of one alert.
pub fn finding(n: &Notice, t: &HubTarget) -> Value {
    let title = cut(
        &format!(
            "das-setup: {} on {}",
            n.rule,
            n.database.as_deref().unwrap_or(n.target())
        ),
        TITLE_CHARS,
    );
    let mut description = n
        .description
        .clone()
        .unwrap_or_else(|| format!("Activity matched the alert rule {}", n.rule));
    let who: Vec<String> = [
        ("user", &n.user),
        ("client", &n.client),
        ("object", &n.object),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
    .collect();
    if !who.is_empty() {
        description.push_str(&format!(" ({})", who.join(", ")));
    }
    let mut fields = serde_json::Map::new();
    let mut field = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            fields.insert(format!("das-setup/{k}"), json!(cut(v, FIELD_CHARS)));
        }
    };
    field("alertId", Some(&n.alert_id));
    field("rule", Some(&n.rule));
    for (name, value) in n.event_fields() {
        field(name, value);
    }
    field("storedIn", n.stored_in().as_deref());
    json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": format!("das-setup/{}", n.alert_id),
        "ProductArn": t.product_arn(),
        "GeneratorId": format!("das-setup/{}", n.rule),
        "AwsAccountId": t.account,
        "Types": [FINDING_TYPE],
        "CreatedAt": n.event_time,
        "UpdatedAt": n.event_time,
        "Severity": { "Label": n.severity.to_ascii_uppercase() },
        "Title": title,
        "Description": cut(&description, DESCRIPTION_CHARS),
        "Resources": [{
            "Type": t.resource_type(),
            "Id": t.database_arn,
            "Partition": t.partition,
            "Region": t.region,
        }],
        "ProductFields": fields,
        "RecordState": "ACTIVE",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> HubTarget {
        HubTarget::from_database_arn("arn:aws:rds:eu-west-1:123456789012:cluster:shop").unwrap()
    }

    fn notice() -> Notice {
        let mut n = crate::notify::tests::notice_for_tests("table-dropped");
        n.severity = "critical";
        n.description = None;
        n
    }

    #[test]
    fn the_database_arn_gives_the_accounts_own_product() {
        let t = target();
        assert_eq!(
            t.product_arn(),
            "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
        );
        assert_eq!(t.resource_type(), "AwsRdsDbCluster");
        let db =
            HubTarget::from_database_arn("arn:aws-cn:rds:cn-north-1:123456789012:db:ora1").unwrap();
        assert_eq!(db.resource_type(), "AwsRdsDbInstance");
        assert_eq!(db.partition, "aws-cn");
        for bad in [
            "",
            "arn:aws:s3:::bucket",
            "arn:aws:rds:eu-west-1:12345:cluster:x",
            "arn:aws:rds:eu-west-1:123456789012:snapshot:x",
            "arn:aws:rds:eu-west-1:123456789012:cluster:",
        ] {
            assert_eq!(HubTarget::from_database_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_finding_has_every_required_field_within_asffs_limits() {
        let mut n = notice();
        n.description = Some("x".repeat(2000));
        n.bucket = Some("b".into());
        n.s3_key = Some("parsed/DDL/k".into());
        let f = finding(&n, &target());
        for required in [
            "SchemaVersion",
            "Id",
            "ProductArn",
            "GeneratorId",
            "AwsAccountId",
            "CreatedAt",
            "UpdatedAt",
            "Title",
            "Description",
            "Resources",
        ] {
            assert!(f.get(required).is_some(), "{required}");
        }
        assert_eq!(f["Id"], format!("das-setup/{}", n.alert_id));
        assert_eq!(f["Severity"]["Label"], "CRITICAL");
        assert_eq!(f["CreatedAt"], n.event_time);
        assert_eq!(f["Description"].as_str().unwrap().chars().count(), 1024);
        assert_eq!(
            f["Resources"][0]["Id"],
            "arn:aws:rds:eu-west-1:123456789012:cluster:shop"
        );
        assert_eq!(f["ProductFields"]["das-setup/rule"], "table-dropped");
        assert_eq!(
            f["ProductFields"]["das-setup/statement"],
            "DROP TABLE orders"
        );
        assert_eq!(
            f["ProductFields"]["das-setup/storedIn"],
            "s3://b/parsed/DDL/k"
        );
        assert_eq!(f["Title"], "das-setup: table-dropped on shop");
        assert!(wanted("high") && wanted("critical"));
        assert!(!wanted("medium") && !wanted("low") && !wanted("info"));
    }
}
