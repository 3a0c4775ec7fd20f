//! Every policy das-setup renders, linted by parliament (an independent IAM policy linter): no
//! finding but the exceptions justified in `policies/lint-exceptions.json`, and no stale
//! exception. Rendered for a cluster and for an instance, through the real renderer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use das_setup::policy::{Template, Values, render};

fn values(context_key: &str, resource_id: &str, function: &str) -> Values {
    [
        ("ACCOUNT_ID", "123456789012"),
        ("PARTITION", "aws"),
        ("REGION", "eu-west-1"),
        ("BUCKET", "das-setup-demo-123456789012-eu-west-1"),
        ("PREFIX", "parsed/"),
        (
            "DAS_KMS_KEY_ARN",
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
        ("ENCRYPTION_CONTEXT_KEY", context_key),
        ("RESOURCE_ID", resource_id),
        ("DAS_STREAM_NAME", &format!("aws-rds-das-{resource_id}")),
        ("FUNCTION_NAME", function),
        ("LAMBDA_LOG_GROUP", &format!("/aws/lambda/{function}")),
        (
            "FIREHOSE_LOG_GROUP",
            &format!("/aws/kinesisfirehose/{function}"),
        ),
        ("FIREHOSE_LOG_STREAM", "DestinationDelivery"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

#[test]
fn every_rendered_policy_passes_the_iam_linter() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("policies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let variants = [
        (
            "cluster",
            values(
                "aws:rds:dbc-id",
                "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                "das-setup-demo",
            ),
        ),
        (
            "instance",
            values(
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
    let out = Command::new(root.join("tests/emulator/python"))
        .arg(root.join("tests/lint/iam_lint.py"))
        .arg("--exceptions")
        .arg(root.join("policies/lint-exceptions.json"))
        .arg(&dir)
        .output()
        .expect("run tests/lint/iam_lint.py");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "IAM lint findings:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report.matches("linted ").count(), 12, "{report}");
}
