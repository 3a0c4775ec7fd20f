"""IAM enforcement (`server.py --enforce-iam`): every request is checked against the IAM policies
of the credentials that signed it, so a test can prove that a role can do its job and nothing
else. moto has the mechanism (its `INITIAL_NO_AUTH_ACTION_COUNT`); this module adds what a
least-privilege policy like das-setup's needs from it, as AWS does:

- The account root. Requests signed with a root access key (`ROOT_ACCESS_KEYS`: the key id the
  tests, the demo and das-setup use against the emulator, and the one of the emulator's own
  service components: RDS's producer and the Firehose runner) are allowed everything, as the
  root user is in AWS. moto has no root user: without one nothing could create the first role.
- The resource. moto checks every service but S3 (and IAM, STS, SQS) against `Resource: "*"`,
  so a statement scoped to one ARN never applies and a scoped policy is refused outright. For
  KMS the resource here is the key: `KeyId` resolved through aliases, or for a `Decrypt` without
  one, the key that made the ciphertext (moto's ciphertext blob names it), as in AWS. For
  Kinesis it is the stream (`StreamARN`, `StreamName`, or the stream a shard iterator reads).
- Condition keys. moto gives policy conditions no request values. For KMS each pair of the
  request's `EncryptionContext` is `kms:EncryptionContext:<key>`, as in AWS.
- The refusal. moto answers every refused request with an XML `AccessDenied`; AWS's JSON
  services (KMS, Kinesis, Firehose, CloudWatch Logs, Lambda) answer JSON
  `AccessDeniedException`, which is what their SDK clients parse.

Not modelled: key policies (moto evaluates them for DescribeKey only), permission boundaries,
SCPs, session policies, and resource ARNs for services other than S3, IAM, STS, SQS, KMS and
Kinesis.

`credential(Authorization header)` and `principal_of(access key id)` name who signed a request
and for which service (for the admin API's call log);
`enforced()` and `role_allows(role ARN, action, resource)` let the emulator's services check
what they do inside the process (the Firehose runner invoking a function) as AWS would.
"""

import base64
import json
import re

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.iam.access_control import IAMPolicy, IAMRequest, IAMRequestBase, PermissionResult
from moto.kinesis.responses import KinesisResponse
from moto.kinesis.utils import decompose_shard_iterator
from moto.kms.responses import KmsResponse
from moto.kms.utils import _deserialize_ciphertext_blob
from moto.utilities.utils import get_partition

ROOT_ACCESS_KEYS = ("testing", "dasemu")

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/")


def credential(authorization):
    """(access key id, service) from a SigV4 Authorization header; (None, None) without one."""
    found = _CREDENTIAL.search(authorization or "")
    return (found.group(1), found.group(2)) if found else (None, None)


def principal_of(key_id):
    """"root", an assumed-role or user ARN, or None for an unsigned or unknown request."""
    if key_id is None:
        return None
    if key_id in ROOT_ACCESS_KEYS:
        return "root"
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account, partitions in list(sts_backends.items()):
        for partition, backend in list(partitions.items()):
            for role in list(backend.assumed_roles):
                if role.access_key_id == key_id:
                    name = role.role_arn.split("/")[-1]
                    return f"arn:{partition}:sts::{account}:assumed-role/{name}/{role.session_name}"
    for account, partitions in list(iam_backends.items()):
        for partition, backend in list(partitions.items()):
            for user in list(backend.users.values()):
                if any(k.access_key_id == key_id for k in user.access_keys):
                    return user.arn
    return None


# --- the account root -----------------------------------------------------------------------
_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action


def _authorize_unless_root(self, iam_request_cls, resource="*"):
    if credential(self.headers.get("Authorization"))[0] in ROOT_ACCESS_KEYS:
        return None
    return _authorize(self, iam_request_cls, resource)


# --- the resource of a KMS request ----------------------------------------------------------
def _kms_resource(self):
    try:
        params = json.loads(self.body or b"{}")
        key_id = params.get("KeyId") or params.get("DestinationKeyId")
        if not key_id and params.get("CiphertextBlob"):
            key_id = _deserialize_ciphertext_blob(base64.b64decode(params["CiphertextBlob"])).key_id
        if not key_id:
            return "*"  # CreateKey, ListKeys, ListAliases ...: no key, as in AWS
        return self.kms_backend.describe_key(key_id).arn
    except Exception:
        # An unknown key or an unreadable request: a policy naming a key does not apply.
        return "arn:aws:kms:unknown"


# --- the resource of a Kinesis request ------------------------------------------------------
def _kinesis_resource(self):
    try:
        params = json.loads(self.body or b"{}")
        if params.get("StreamARN"):
            return params["StreamARN"]
        name = params.get("StreamName")
        if not name and params.get("ShardIterator"):
            name = decompose_shard_iterator(params["ShardIterator"])[0]
        if not name:
            return "*"  # ListStreams ...: no stream, as in AWS
        return f"arn:{get_partition(self.region)}:kinesis:{self.region}:{self.current_account}:stream/{name}"
    except Exception:
        return "arn:aws:kinesis:unknown"


# --- condition keys from the request --------------------------------------------------------
def condition_values(action, body):
    if not action.startswith("kms:"):
        return {}
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return {}
    context = params.get("EncryptionContext") or {}
    if not isinstance(context, dict):
        return {}
    return {f"kms:EncryptionContext:{k}": v for k, v in context.items() if isinstance(v, str)}


def _check_action_permitted(self, resource):
    """moto's IAMRequestBase.check_action_permitted, with the request's condition values."""
    if self._action == "sts:GetCallerIdentity":  # always allowed, as in AWS
        return
    values = condition_values(self._action, self._body)
    permitted = allowed(self._access_key.collect_policies(), self._action, resource, values)
    if self._is_assuming_role_operation(resource):
        permitted = permitted and self._check_role_trust_relationship(resource)
    if not permitted:
        self._raise_access_denied()


# --- checks made inside the emulator ------------------------------------------------------------
def enforced():
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def role_allows(role_arn, action, resource):
    """Whether the role's identity policies (inline and attached) allow the action."""
    from moto.iam.models import iam_backends

    account, partition = role_arn.split(":")[4], role_arn.split(":")[1]
    backend = iam_backends[account][partition]
    name = role_arn.rsplit("/", 1)[-1]
    try:
        policies = [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        policies += backend.list_attached_role_policies(name)[0]
    except Exception:
        return False  # no such role
    return allowed(policies, action, resource, {})


def allowed(policies, action, resource, values):
    """IAM's rule over identity policies: an explicit Deny wins, else some Allow is needed."""
    verdicts = [IAMPolicy(p).is_action_permitted(action, resource, None, values) for p in policies]
    return PermissionResult.DENIED not in verdicts and PermissionResult.PERMITTED in verdicts


# --- the refusal ----------------------------------------------------------------------------
JSON_SERVICES = ("kms", "kinesis", "firehose", "logs", "lambda")
_raise_access_denied = IAMRequest._raise_access_denied


class AccessDeniedException(JsonRESTError):
    code = 403


def _raise_access_denied_as_the_service_does(self):
    if self._service in JSON_SERVICES:
        raise AccessDeniedException(
            "AccessDeniedException",
            f"User: {self._access_key.arn} is not authorized to perform: {self._action}")
    _raise_access_denied(self)


def install(enforce):
    """Always: the root, the KMS and Kinesis resources, condition values and the refusal's form
    (all inert while nothing is enforced). With `enforce`, every request not signed by a root
    key is checked, from the first one."""
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize_unless_root
    KmsResponse._determine_resource = _kms_resource
    KinesisResponse._determine_resource = _kinesis_resource
    IAMRequestBase.check_action_permitted = _check_action_permitted
    IAMRequest._raise_access_denied = _raise_access_denied_as_the_service_does
    if enforce:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
