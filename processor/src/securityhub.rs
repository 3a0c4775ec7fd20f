//! Security Hub's `BatchImportFindings` and `DescribeHub`, signed with the SDK's own SigV4
//! signer (`crate::signed`), with the SDK's credentials and endpoint settings, over the
//! processor's HTTP client.
//!
//! Why not `aws-sdk-securityhub`: it is 25 MB of source (ASFF's hundreds of resource types),
//! 127 s of release build on the CI machine for one crate, and its request serializer covers
//! every one of those types, which would cost the Lambda zip (issue 3: at most 4 MB) far more
//! than the two REST-JSON operations used here (Security Hub API reference:
//! `POST /findings/import`, body `{"Findings": [...]}`, answer `FailedCount`, `SuccessCount`,
//! `FailedFindings[{Id, ErrorCode, ErrorMessage}]`; `GET /accounts`). `das-setup up
//! --security-hub` asks `DescribeHub` first (the same module), so a hub that is not enabled is
//! refused before any change instead of failing every batch.
//!
//! The signing, endpoint and retries are `crate::signed`'s (three attempts, 10 s timeouts).

use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};

use crate::finding::{HubTarget, finding};
use crate::notify::Notice;
use crate::signed::{Service, SignedClient, describe};

/// Security Hub's service model: `signingName`, `endpointPrefix`, and the SDKs' endpoint
/// variable.
const SERVICE: Service = Service {
    signing_name: "securityhub",
    endpoint_prefix: "securityhub",
    endpoint_variable: "AWS_ENDPOINT_URL_SECURITYHUB",
};
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct SecurityHub {
    target: HubTarget,
    client: SignedClient,
}

impl SecurityHub {
    pub fn new(config: &SdkConfig, target: HubTarget) -> Self {
        // The processor and version, as the SDK's own user agent carries them.
        let agent = format!(
            "das-processor/{} securityhub-signed-request",
            env!("CARGO_PKG_VERSION")
        );
        let client = SignedClient::new(
            config,
            SERVICE,
            &target.region,
            &target.partition,
            &agent,
            ATTEMPTS,
            TIMEOUT,
        );
        Self { target, client }
    }

    pub fn target(&self) -> &HubTarget {
        &self.target
    }

    /// Imports one finding per notice; a result per notice, in order.
    pub async fn import(&self, notices: &[&Notice]) -> Vec<Result<(), String>> {
        let all = |reason: String| notices.iter().map(|_| Err(reason.clone())).collect();
        let findings: Vec<Value> = notices.iter().map(|n| finding(n, &self.target)).collect();
        let body = json!({ "Findings": findings }).to_string();
        let answer = match self
            .client
            .call("POST", "/findings/import", &[], body.as_bytes())
            .await
        {
            Ok(a) => a,
            Err(e) => return all(e),
        };
        if answer.status != 200 {
            return all(describe(
                answer.status,
                answer.error_type.as_deref(),
                &answer.body,
            ));
        }
        results(notices, &answer.body)
    }

    /// Whether Security Hub is enabled in the target's account and region (`DescribeHub`).
    pub async fn enabled(&self) -> Result<bool, String> {
        let answer = self.client.call("GET", "/accounts", &[], b"").await?;
        match answer.status {
            200 => Ok(true),
            // "Account is not subscribed to AWS Security Hub" (DescribeHub API reference,
            // InvalidAccessException).
            401 if answer.error_type.as_deref() == Some("InvalidAccessException") => Ok(false),
            status => Err(describe(status, answer.error_type.as_deref(), &answer.body)),
        }
    }
}

/// Per notice: imported, or the failed finding's error.
fn results(notices: &[&Notice], body: &Value) -> Vec<Result<(), String>> {
    let failed = body
        .get("FailedFindings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let success = body.get("SuccessCount").and_then(Value::as_u64);
    let failed_count = body.get("FailedCount").and_then(Value::as_u64);
    notices
        .iter()
        .map(|n| {
            let id = format!("das-setup/{}", n.alert_id);
            match failed
                .iter()
                .find(|f| f.get("Id").and_then(Value::as_str) == Some(id.as_str()))
            {
                Some(f) => Err(format!(
                    "{}: {}",
                    f.get("ErrorCode")
                        .and_then(Value::as_str)
                        .unwrap_or("failed"),
                    f.get("ErrorMessage").and_then(Value::as_str).unwrap_or("")
                )),
                // An answer without counts is not Security Hub's.
                None if success.is_none() || failed_count.is_none() => {
                    Err("Security Hub's answer had no SuccessCount / FailedCount".to_owned())
                }
                None => Ok(()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: &str) -> Notice {
        let mut n = crate::notify::tests::notice_for_tests("table-dropped");
        n.alert_id = id.to_owned();
        n
    }

    #[test]
    fn each_notice_gets_its_findings_result() {
        let (a, b) = (notice("aaa"), notice("bbb"));
        let body = json!({"FailedCount": 1, "SuccessCount": 1, "FailedFindings": [
            {"Id": "das-setup/bbb", "ErrorCode": "InvalidInput", "ErrorMessage": "Title too long"}]});
        let r = results(&[&a, &b], &body);
        assert_eq!(r[0], Ok(()));
        assert_eq!(r[1], Err("InvalidInput: Title too long".to_owned()));
        let r = results(&[&a], &json!({"unexpected": true}));
        assert!(r[0].as_ref().unwrap_err().contains("no SuccessCount"));
    }
}
