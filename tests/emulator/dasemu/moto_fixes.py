"""Where moto's answers differ from AWS's in ways a strict client (the AWS SDK for Rust) refuses.
Each fix names what AWS returns; boto3 tolerates moto's versions, so moto's own tests miss them.

- S3 GetBucketVersioning: AWS's root element is <VersioningConfiguration>; moto 5.2 serializes
  <GetBucketVersioningResponse>, which the Rust SDK rejects ("invalid XML root").
- Policy conditions: in AWS a condition on a key the request does not carry does not match
  (unless its operator ends in IfExists), and a statement whose conditions do not match does
  not apply. moto 5.2 treats an absent key as matching and answers DENIED for a non-matching
  statement whatever its Effect, so a bucket policy "Deny when aws:SecureTransport is false"
  denies every request. Fixed to AWS's rules. (The emulator serves plain HTTP and supplies no
  aws:SecureTransport value, so the TLS-only bucket policy is present but inert here.)
"""

from xml.sax.saxutils import escape

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3.responses import S3Response

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{escape(status)}</Status>" if status else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="{S3_NS}">{inner}</VersioningConfiguration>'
    return 200, {"Content-Type": "application/xml"}, body


_statement_verdict = IAMPolicyStatement.is_action_permitted


def _is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
    verdict = _statement_verdict(self, action, resource, principal, incoming_condition_values)
    if (verdict == PermissionResult.DENIED and self._statement.get("Condition")
            and not self._check_conditions(incoming_condition_values)):
        return PermissionResult.NEUTRAL
    return verdict


_check_conditions = IAMPolicyStatement._check_conditions


def _conditions_match(self, incoming_condition_values):
    incoming = incoming_condition_values or {}
    for operator, pairs in (self._statement.get("Condition") or {}).items():
        if operator.endswith("IfExists") or not isinstance(pairs, dict):
            continue
        if any(key not in incoming for key in pairs):
            return False
    return _check_conditions(self, incoming_condition_values)


def install():
    S3Response.get_bucket_versioning = _get_bucket_versioning
    IAMPolicyStatement.is_action_permitted = _is_action_permitted
    IAMPolicyStatement._check_conditions = _conditions_match
