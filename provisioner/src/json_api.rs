//! Glue's and Athena's operations over AWS's JSON 1.1 protocol (`POST /`, the operation in
//! `X-Amz-Target: <targetPrefix>.<Operation>`, the input as a JSON object, errors as `__type`
//! and `message`: the services' models, `protocol: json`, `jsonVersion: 1.1`), signed by the
//! SDK's SigV4 signer with the run's credentials and endpoint (`das_processor::signed`).
//!
//! Why not `aws-sdk-glue` and `aws-sdk-athena`: das-setup calls a dozen of their operations,
//! and Glue's crate is among the SDK's largest; every build (clippy, the MSRV check, the tests)
//! would compile both. The requests are the models' shapes, built here as JSON; the emulator
//! checks every one against botocore's copy of the same models (`tests/emulator/dasemu/contract.py`),
//! and the errors map into [`AwsError`] like the SDK's.

use std::time::Duration;

use das_processor::signed::{Answer, Service, SignedClient};
use serde_json::Value;

use crate::aws::{AwsError, ErrorKind, MAX_ATTEMPTS};

/// Glue's model: `signingName`, `endpointPrefix`, `targetPrefix`, the SDKs' endpoint variable.
pub const GLUE: (Service, &str) = (
    Service {
        signing_name: "glue",
        endpoint_prefix: "glue",
        endpoint_variable: "AWS_ENDPOINT_URL_GLUE",
    },
    "AWSGlue",
);
/// Athena's model.
pub const ATHENA: (Service, &str) = (
    Service {
        signing_name: "athena",
        endpoint_prefix: "athena",
        endpoint_variable: "AWS_ENDPOINT_URL_ATHENA",
    },
    "AmazonAthena",
);
const TIMEOUT: Duration = Duration::from_secs(30);

/// One JSON 1.1 service.
#[derive(Clone, Debug)]
pub struct JsonApi {
    client: SignedClient,
    target_prefix: &'static str,
}

impl JsonApi {
    pub fn new(
        config: &aws_config::SdkConfig,
        (service, target_prefix): (Service, &'static str),
    ) -> Self {
        let region = config
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        let partition = crate::naming::partition_of(&region);
        let agent = format!("das-setup/{} json-1.1", env!("CARGO_PKG_VERSION"));
        Self {
            client: SignedClient::new(
                config,
                service,
                &region,
                partition,
                &agent,
                MAX_ATTEMPTS,
                TIMEOUT,
            ),
            target_prefix,
        }
    }

    /// Calls `action` (`glue:GetTable`: the IAM action, whose name after the `:` is the
    /// operation's) on `resource` (for messages) with `input`; the output, or the error.
    pub async fn call(
        &self,
        action: &'static str,
        resource: &str,
        input: &Value,
    ) -> Result<Value, AwsError> {
        let operation = action.split_once(':').map_or(action, |(_, op)| op);
        let target = format!("{}.{operation}", self.target_prefix);
        let body = input.to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let result = match self
            .client
            .call("POST", "/", &headers, body.as_bytes())
            .await
        {
            Ok(answer) if answer.ok() => Ok(answer.body),
            Ok(answer) => Err(error(action, resource, &answer)),
            Err(reason) => Err(AwsError {
                action,
                resource: resource.to_owned(),
                kind: ErrorKind::Transport,
                code: None,
                message: reason,
            }),
        };
        crate::aws::trace(action, resource, &result);
        result
    }
}

/// An error answer as an [`AwsError`]: its code, message and kind.
fn error(action: &'static str, resource: &str, answer: &Answer) -> AwsError {
    let code = answer.error_type.clone();
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| answer.body.get(*k).and_then(Value::as_str))
        .map_or_else(|| answer.describe(), str::to_owned);
    AwsError {
        action,
        resource: resource.to_owned(),
        kind: crate::aws::kind_of_code(code.as_deref().unwrap_or_default(), answer.status),
        code,
        message,
    }
}

/// A string member of an answer.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_keep_the_code_and_message_and_their_kind() {
        let answer = Answer {
            status: 400,
            error_type: Some("EntityNotFoundException".into()),
            body: json!({"__type": "EntityNotFoundException", "Message": "Database x not found."}),
        };
        let e = error("glue:GetDatabase", "database x", &answer);
        assert!(e.code_is("EntityNotFoundException"));
        assert_eq!(e.kind, ErrorKind::Service);
        assert_eq!(e.message, "Database x not found.");
        let denied = Answer {
            status: 400,
            error_type: Some("AccessDeniedException".into()),
            body: json!({"message": "no"}),
        };
        assert!(error("glue:CreateTable", "t", &denied).is_access_denied());
        let throttled = Answer {
            status: 400,
            error_type: Some("ThrottlingException".into()),
            body: Value::Null,
        };
        assert_eq!(
            error("athena:GetQueryExecution", "q", &throttled).kind,
            ErrorKind::Throttling
        );
    }

    #[test]
    fn members_are_read_by_path() {
        let v = json!({"Table": {"StorageDescriptor": {"Location": "s3://b/p/"}}});
        assert_eq!(
            str_at(&v, &["Table", "StorageDescriptor", "Location"]),
            Some("s3://b/p/")
        );
        assert_eq!(str_at(&v, &["Table", "Name"]), None);
    }
}
