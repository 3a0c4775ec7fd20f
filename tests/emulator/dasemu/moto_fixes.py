"""Where moto's answers differ from AWS's in ways a strict client (the AWS SDK for Rust) refuses.
Each fix names what AWS returns; boto3 tolerates moto's versions, so moto's own tests miss them.

- S3 GetBucketVersioning: AWS's root element is <VersioningConfiguration>; moto 5.2 serializes
  <GetBucketVersioningResponse>, which the Rust SDK rejects ("invalid XML root").
- S3 PutObjectLockConfiguration: "You can enable Object Lock for new or existing buckets"
  (PutObjectLockConfiguration API reference, botocore's S3 model 2006-03-01); versioning must
  be Enabled first ("Before you lock any objects, you must enable S3 Versioning and Object Lock
  on a general purpose bucket", S3 User Guide, "Configuring S3 Object Lock"). moto 5.2 still
  refuses a bucket that holds objects (InvalidBucket "Bucket needs to be empty"), the rule before
  November 2023. Fixed to today's rule; the versioning check is kept. And GetObjectLockConfiguration
  answers the period as it was given, Days or Years ("you must select one"); moto adds the other
  as 0.
- S3 GetObjectRetention (`GET /key?retention[&versionId=]`): AWS answers <Retention> with the
  version's Mode and RetainUntilDate, or NoSuchObjectLockConfiguration when it has none
  (GetObjectRetention API reference; S3 error codes). moto 5.2 has no handler and serves the
  object's bytes instead. Added.
- Firehose UpdateDestination: "You can update a delivery stream to enable Amazon S3 backup if
  it is disabled. If backup is enabled, you can't update the delivery stream to disable it"
  (Firehose API reference, ExtendedS3DestinationUpdate, S3BackupMode). moto 5.2 leaves the
  parameter unprocessed ("Unimplemented") and takes Disabled. Refused, with
  InvalidArgumentException, Firehose's error for a parameter value it will not take.
- Policy conditions: in AWS a condition on a key the request does not carry does not match
  (unless its operator ends in IfExists), and a statement whose conditions do not match does
  not apply. moto 5.2 treats an absent key as matching and answers DENIED for a non-matching
  statement whatever its Effect, so a bucket policy "Deny when aws:SecureTransport is false"
  denies every request. Fixed to AWS's rules. (The emulator serves plain HTTP and supplies no
  aws:SecureTransport value, so the TLS-only bucket policy is present but inert here.)
"""

from xml.sax.saxutils import escape

from moto.firehose.models import FirehoseBackend
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3.exceptions import InvalidBucketState
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{escape(status)}</Status>" if status else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="{S3_NS}">{inner}</VersioningConfiguration>'
    return 200, {"Content-Type": "application/xml"}, body


def _put_object_lock_configuration(self, bucket_name, lock_enabled, mode=None, days=None, years=None):
    bucket = self.get_bucket(bucket_name)
    if not bucket.is_versioned:
        raise InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
    if lock_enabled:
        bucket.object_lock_enabled = True
        bucket.versioning_status = "Enabled"
    bucket.default_lock_mode = mode
    bucket.default_lock_days = days
    bucket.default_lock_years = years


_get_object_lock_configuration = S3Backend.get_object_lock_configuration


def _get_object_lock_configuration_as_given(self, bucket_name):
    enabled, mode, days, years = _get_object_lock_configuration(self, bucket_name)
    return enabled, mode, days or None, years or None


_key_response_get = S3Response._key_response_get


def _key_response_get_with_retention(self, query, key_name):
    if "retention" not in query:
        return _key_response_get(self, query, key_name)
    self._set_action("KEY", "GET", query)
    self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
    key, _ = self._get_key(validate_storage_class=False)
    if not key.lock_mode:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchObjectLockConfiguration</Code>'
                "<Message>The specified object does not have a ObjectLock configuration</Message></Error>")
        return 404, {"Content-Type": "application/xml"}, body
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Retention xmlns="{S3_NS}"><Mode>{escape(key.lock_mode)}</Mode>'
            f"<RetainUntilDate>{escape(key.lock_until or '')}</RetainUntilDate></Retention>")
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


def _update_destination_keeping_backup(self, delivery_stream_name, current_delivery_stream_version_id,
                                       destination_id, s3_destination_update, extended_s3_destination_update,
                                       *args, **kwargs):
    from moto.firehose.exceptions import InvalidArgumentException

    stream = self.delivery_streams.get(delivery_stream_name)
    wants = (extended_s3_destination_update or {}).get("S3BackupMode")
    if stream is not None and wants == "Disabled":
        for destination in stream.destinations:
            if destination.get("destination_id") == destination_id and \
                    (destination.get("ExtendedS3") or {}).get("S3BackupMode") == "Enabled":
                raise InvalidArgumentException(
                    "S3 backup is enabled for this delivery stream and cannot be disabled.")
    return _update_destination(self, delivery_stream_name, current_delivery_stream_version_id, destination_id,
                               s3_destination_update, extended_s3_destination_update, *args, **kwargs)


_update_destination = FirehoseBackend.update_destination


def install():
    S3Response.get_bucket_versioning = _get_bucket_versioning
    S3Backend.put_object_lock_configuration = _put_object_lock_configuration
    S3Backend.get_object_lock_configuration = _get_object_lock_configuration_as_given
    S3Response._key_response_get = _key_response_get_with_retention
    IAMPolicyStatement.is_action_permitted = _is_action_permitted
    IAMPolicyStatement._check_conditions = _conditions_match
    FirehoseBackend.update_destination = _update_destination_keeping_backup
