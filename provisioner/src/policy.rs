//! IAM policies are data: the JSON templates in `policies/` (compiled in), rendered by one
//! function. Every value is inserted JSON-escaped, every rendering is parsed, and an unknown or
//! missing placeholder is an error. Pure. What each template grants: `policies/README.md`.

use std::collections::BTreeMap;

/// One template of `policies/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Template {
    LambdaTrust,
    LambdaExec,
    /// Added to `LambdaExec` when the function publishes alerts.
    LambdaAlerts,
    /// Added too with `--security-hub`.
    LambdaSecurityHub,
    FirehoseTrust,
    FirehoseDelivery,
    BucketPolicy,
    KeyPolicy,
    /// The statement added to das-setup's key policy for the alarms (`resource::alarms`).
    KeyPolicyCloudWatch,
    /// What the principal running `das-setup` needs (not attached by das-setup: for people).
    Deployer,
}

impl Template {
    pub const ALL: [Template; 10] = [
        Template::LambdaTrust,
        Template::LambdaExec,
        Template::LambdaAlerts,
        Template::LambdaSecurityHub,
        Template::FirehoseTrust,
        Template::FirehoseDelivery,
        Template::BucketPolicy,
        Template::KeyPolicy,
        Template::KeyPolicyCloudWatch,
        Template::Deployer,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Template::LambdaTrust => "lambda-trust.json",
            Template::LambdaExec => "lambda-exec.json",
            Template::LambdaAlerts => "lambda-alerts.json",
            Template::LambdaSecurityHub => "lambda-securityhub.json",
            Template::FirehoseTrust => "firehose-trust.json",
            Template::FirehoseDelivery => "firehose-delivery.json",
            Template::BucketPolicy => "bucket-policy.json",
            Template::KeyPolicy => "key-policy.json",
            Template::KeyPolicyCloudWatch => "key-policy-cloudwatch.json",
            Template::Deployer => "deployer.json",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Template::LambdaTrust => include_str!("../../policies/lambda-trust.json"),
            Template::LambdaExec => include_str!("../../policies/lambda-exec.json"),
            Template::LambdaAlerts => include_str!("../../policies/lambda-alerts.json"),
            Template::LambdaSecurityHub => {
                include_str!("../../policies/lambda-securityhub.json")
            }
            Template::FirehoseTrust => include_str!("../../policies/firehose-trust.json"),
            Template::FirehoseDelivery => include_str!("../../policies/firehose-delivery.json"),
            Template::BucketPolicy => include_str!("../../policies/bucket-policy.json"),
            Template::KeyPolicy => include_str!("../../policies/key-policy.json"),
            Template::KeyPolicyCloudWatch => {
                include_str!("../../policies/key-policy-cloudwatch.json")
            }
            Template::Deployer => include_str!("../../policies/deployer.json"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policies/{template}: no value for placeholder {{{{{name}}}}}")]
    Missing {
        template: &'static str,
        name: String,
    },
    #[error("policies/{template}: unterminated placeholder")]
    Unterminated { template: &'static str },
    #[error("policies/{template} does not render to valid JSON: {reason}")]
    Invalid {
        template: &'static str,
        reason: String,
    },
}

/// Placeholder values: `ACCOUNT_ID` -> `123456789012`, ...
pub type Values = BTreeMap<&'static str, String>;

/// Renders a template into a policy document.
pub fn render(template: Template, values: &Values) -> Result<serde_json::Value, PolicyError> {
    let file = template.file_name();
    let mut out = String::with_capacity(template.source().len() + 256);
    let mut rest = template.source();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or(PolicyError::Unterminated { template: file })?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| PolicyError::Missing {
            template: file,
            name: name.to_owned(),
        })?;
        // Placeholders sit inside JSON strings: insert the value escaped, without its quotes.
        let quoted = serde_json::Value::String(value.clone()).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).map_err(|e| PolicyError::Invalid {
        template: file,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Sample values for a database; the other tests use the cluster's.
    fn values_for(context_key: &str, resource_id: &str, function: &str) -> Values {
        [
            ("ACCOUNT_ID", "123456789012".to_owned()),
            ("PARTITION", "aws".to_owned()),
            ("REGION", "eu-west-1".to_owned()),
            ("BUCKET", "das-setup-demo-123456789012-eu-west-1".to_owned()),
            ("PREFIX", "parsed/".to_owned()),
            (
                "DAS_KMS_KEY_ARN",
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .to_owned(),
            ),
            (
                "DIGEST_KEY_ARN",
                "arn:aws:kms:eu-west-1:123456789012:key/mrk-digests".to_owned(),
            ),
            ("ENCRYPTION_CONTEXT_KEY", context_key.to_owned()),
            ("RESOURCE_ID", resource_id.to_owned()),
            ("DAS_STREAM_NAME", format!("aws-rds-das-{resource_id}")),
            ("FUNCTION_NAME", function.to_owned()),
            ("LAMBDA_LOG_GROUP", format!("/aws/lambda/{function}")),
            (
                "FIREHOSE_LOG_GROUP",
                format!("/aws/kinesisfirehose/{function}"),
            ),
            ("FIREHOSE_LOG_STREAM", "DestinationDelivery".to_owned()),
            (
                "ALERTS_TOPIC_ARN",
                format!("arn:aws:sns:eu-west-1:123456789012:{function}-alerts"),
            ),
            ("ALARM_PREFIX", format!("{function}-")),
        ]
        .into_iter()
        .collect()
    }

    fn values() -> Values {
        values_for(
            "aws:rds:dbc-id",
            "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "das-setup-demo",
        )
    }

    /// Every rendering, for a cluster and for an instance, linted by parliament (an independent
    /// IAM policy linter, `tests/lint/iam_lint.py`): no finding but the exceptions justified in
    /// `policies/lint-exceptions.json`, and no stale exception.
    #[test]
    fn every_rendered_policy_passes_the_iam_linter() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("das-setup-policies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let variants = [
            ("cluster", values()),
            (
                "instance",
                values_for(
                    "aws:rds:db-id",
                    "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    "das-setup-db-ora1",
                ),
            ),
        ];
        for (variant, values) in &variants {
            for t in Template::ALL {
                let doc = render(t, values).unwrap();
                let path = dir.join(format!("{variant}--{}", t.file_name()));
                std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
            }
        }
        let out = std::process::Command::new(root.join("tests/emulator/python"))
            .arg(root.join("tests/lint/iam_lint.py"))
            .arg("--exceptions")
            .arg(root.join("policies/lint-exceptions.json"))
            .arg(&dir)
            .output()
            .expect("run tests/lint/iam_lint.py");
        let _ = std::fs::remove_dir_all(&dir);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "IAM lint findings:\n{report}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(report.matches("linted ").count(), 20, "{report}");
    }

    fn statements(doc: &Value) -> &Vec<Value> {
        doc["Statement"].as_array().unwrap()
    }

    fn actions(statement: &Value) -> Vec<&str> {
        match &statement["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
            other => panic!("Action {other}"),
        }
    }

    #[test]
    fn every_template_renders_to_a_policy_with_nothing_left_over() {
        for t in Template::ALL {
            let doc = render(t, &values()).unwrap();
            assert_eq!(doc["Version"], "2012-10-17", "{t:?}");
            assert!(!statements(&doc).is_empty());
            assert!(!doc.to_string().contains("{{"), "{t:?}");
            for s in statements(&doc) {
                assert!(
                    s["Sid"].is_string(),
                    "{t:?}: every statement says why it exists"
                );
                // No wildcard action except the key policy's administration by the account.
                if !matches!(t, Template::KeyPolicy | Template::KeyPolicyCloudWatch) {
                    assert!(
                        actions(s).iter().all(|a| !a.ends_with('*') || *a == "s3:*"),
                        "{t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_processor_decrypts_only_this_databases_keys_and_only_writes_its_prefix() {
        let doc = render(Template::LambdaExec, &values()).unwrap();
        let all: Vec<&str> = statements(&doc).iter().flat_map(actions).collect();
        assert_eq!(
            all,
            [
                "kms:Decrypt",
                "kms:Sign",
                "s3:PutObject",
                "s3:ListBucket",
                "s3:GetObject",
                "logs:CreateLogStream",
                "logs:PutLogEvents"
            ]
        );
        let kms = &statements(&doc)[0];
        assert_eq!(kms["Resource"], values()["DAS_KMS_KEY_ARN"].as_str());
        assert_eq!(
            kms["Condition"],
            json!({"StringEquals": {"kms:EncryptionContext:aws:rds:dbc-id": "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ"}})
        );
        // It signs with the digests' key only, only the way the processor does.
        let sign = &statements(&doc)[1];
        assert_eq!(sign["Resource"], values()["DIGEST_KEY_ARN"].as_str());
        assert_eq!(
            sign["Condition"],
            json!({"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_384", "kms:MessageType": "RAW"}})
        );
        assert_eq!(
            statements(&doc)[2]["Resource"],
            "arn:aws:s3:::das-setup-demo-123456789012-eu-west-1/parsed/*"
        );
        // It reads only its digest chain: the listing of that folder, and the digests in it.
        assert_eq!(
            statements(&doc)[3]["Condition"],
            json!({"StringEquals": {"s3:prefix": "parsed/_digests/"}})
        );
        assert_eq!(
            statements(&doc)[4]["Resource"],
            "arn:aws:s3:::das-setup-demo-123456789012-eu-west-1/parsed/_digests/*"
        );
    }

    #[test]
    fn trust_policies_are_guarded_against_the_confused_deputy() {
        let lambda = render(Template::LambdaTrust, &values()).unwrap();
        assert_eq!(
            statements(&lambda)[0]["Principal"],
            json!({"Service": "lambda.amazonaws.com"})
        );
        assert_eq!(
            statements(&lambda)[0]["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": "123456789012"}})
        );
        let firehose = render(Template::FirehoseTrust, &values()).unwrap();
        assert_eq!(
            statements(&firehose)[0]["Principal"],
            json!({"Service": "firehose.amazonaws.com"})
        );
        assert_eq!(
            statements(&firehose)[0]["Condition"],
            json!({"StringEquals": {"sts:ExternalId": "123456789012"}})
        );
    }

    #[test]
    fn firehose_reads_the_das_stream_and_never_touches_the_key() {
        let doc = render(Template::FirehoseDelivery, &values()).unwrap();
        assert!(!doc.to_string().contains("kms:"));
        assert_eq!(
            statements(&doc)[0]["Resource"],
            "arn:aws:kinesis:eu-west-1:123456789012:stream/aws-rds-das-cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        );
        let bucket = render(Template::BucketPolicy, &values()).unwrap();
        assert_eq!(statements(&bucket)[0]["Effect"], "Deny");
        assert_eq!(
            statements(&bucket)[0]["Condition"],
            json!({"Bool": {"aws:SecureTransport": "false"}})
        );
    }

    #[test]
    fn values_are_escaped_and_missing_ones_are_named() {
        let mut v = values();
        v.insert("PREFIX", "we\"ird\\".to_owned());
        let doc = render(Template::LambdaExec, &v).unwrap();
        assert!(
            statements(&doc)[2]["Resource"]
                .as_str()
                .unwrap()
                .ends_with("/we\"ird\\*")
        );
        v.remove("RESOURCE_ID");
        let e = render(Template::LambdaExec, &v).unwrap_err().to_string();
        assert_eq!(
            e,
            "policies/lambda-exec.json: no value for placeholder {{RESOURCE_ID}}"
        );
    }
}
