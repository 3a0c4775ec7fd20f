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
  request's `EncryptionContext` is `kms:EncryptionContext:<key>`, as in AWS; for S3's
  ListBucket, `s3:prefix` is the listing's `prefix`; for EventBridge's PutEvents,
  `events:source` and `events:detail-type` are its entries'.
- The refusal. moto answers every refused request with an XML `AccessDenied`; AWS's JSON
  services (KMS, Kinesis, Firehose, CloudWatch Logs, Lambda, EventBridge) answer JSON
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
import threading

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
        if params.get("AliasName"):
            # CreateAlias, DeleteAlias, UpdateAlias: authorized on the alias, and (checked in
            # _check_action_permitted_fully) on the key (KMS Developer Guide, "Controlling access
            # to aliases").
            return f"arn:{get_partition(self.region)}:kms:{self.region}:{self.current_account}:{params['AliasName']}"
        key_id = params.get("KeyId") or params.get("DestinationKeyId")
        if not key_id and params.get("CiphertextBlob"):
            key_id = _deserialize_ciphertext_blob(base64.b64decode(params["CiphertextBlob"])).key_id
        if not key_id:
            return "*"  # CreateKey, ListKeys, ListAliases ...: no key, as in AWS
    except Exception:
        return "arn:aws:kms:unknown"  # an unreadable request: a policy naming a key does not apply
    try:
        return self.kms_backend.describe_key(key_id).arn
    except Exception:
        # A key or alias that does not exist: KMS answers NotFoundException before any
        # authorization (there is no key whose policy could decide), as das-setup's first up
        # sees when it looks for its alias.
        from moto.kms.exceptions import NotFoundException

        raise NotFoundException(f"Alias {key_id} is not found." if key_id.startswith("alias/")
                                else f"Invalid keyId {key_id}")


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
def condition_values(action, body, path=""):
    if action == "s3:ListBucket":
        # s3:prefix: the listing's `prefix` parameter; absent when the request names none, so a
        # statement conditioned on it does not apply (Service Authorization Reference, Amazon
        # S3, condition key s3:prefix; S3 User Guide, "Bucket policy examples using condition
        # keys", limiting a listing to a prefix).
        from urllib.parse import parse_qs, urlparse

        prefix = parse_qs(urlparse(path or "").query).get("prefix")
        return {"s3:prefix": prefix[0]} if prefix else {}
    if action == "events:PutEvents":
        # events:source and events:detail-type: the entries' Source and DetailType (Service
        # Authorization Reference, Amazon EventBridge condition keys). Entries that disagree
        # give a value no single-valued condition matches, so every entry must satisfy it.
        try:
            entries = [e for e in json.loads(body or b"{}").get("Entries") or [] if isinstance(e, dict)]
        except (ValueError, AttributeError):
            return {}
        values = {}
        for key, member in (("events:source", "Source"), ("events:detail-type", "DetailType")):
            seen = {e.get(member) for e in entries}
            if len(seen) == 1 and isinstance(next(iter(seen)), str):
                values[key] = next(iter(seen))
            elif seen:
                values[key] = "<entries differ>"
        return values
    if not action.startswith("kms:"):
        return {}
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return {}
    if action == "kms:CreateKey":
        # kms:KeySpec and kms:KeyUsage, with the defaults of an absent parameter (same page;
        # CreateKey API reference, KeySpec and KeyUsage).
        return {"kms:KeySpec": params.get("KeySpec", "SYMMETRIC_DEFAULT"),
                "kms:KeyUsage": params.get("KeyUsage", "ENCRYPT_DECRYPT")}
    if action == "kms:Sign":
        # kms:SigningAlgorithm and kms:MessageType: the request's values, MessageType's default
        # (RAW) when it names none: "This type of condition works even when the parameter
        # doesn't appear in the request, such as when you use the parameter's default value"
        # (KMS Developer Guide, "AWS KMS condition keys"; Sign API reference, MessageType).
        values = {"kms:MessageType": params.get("MessageType", "RAW")}
        if isinstance(params.get("SigningAlgorithm"), str):
            values["kms:SigningAlgorithm"] = params["SigningAlgorithm"]
        return values
    context = params.get("EncryptionContext") or {}
    if not isinstance(context, dict):
        return {}
    return {f"kms:EncryptionContext:{k}": v for k, v in context.items() if isinstance(v, str)}


def _check_action_permitted(self, resource):
    """moto's IAMRequestBase.check_action_permitted, with the request's condition values."""
    if self._action == "sts:GetCallerIdentity":  # always allowed, as in AWS
        return
    values = condition_values(self._action, self._body, getattr(self, "_path", ""))
    values.update(key_tags(resource))
    permitted = allowed(self._access_key.collect_policies(), self._action, resource, values)
    if self._is_assuming_role_operation(resource):
        permitted = permitted and self._check_role_trust_relationship(resource)
    if not permitted:
        self._raise_access_denied()


def key_tags(resource):
    """aws:ResourceTag/<key> for a request on a KMS key: "You can use the aws:ResourceTag/tag-key
    global condition key to control access to KMS keys based on the tags on the KMS key" (KMS
    Developer Guide, "ABAC for AWS KMS", "Tags in policies")."""
    if not isinstance(resource, str) or ":kms:" not in resource or ":key/" not in resource:
        return {}
    from moto.kms.models import kms_backends

    parts = resource.split(":")
    try:
        tags = kms_backends[parts[4]][parts[3]].list_resource_tags(resource.rsplit("/", 1)[-1])
    except Exception:
        return {}
    return {f"aws:ResourceTag/{t['TagKey']}": t["TagValue"] for t in tags.get("Tags", [])}


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
JSON_SERVICES = ("kms", "kinesis", "firehose", "logs", "lambda", "events", "securityhub", "glue", "athena")
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
    install_deployment_checks()
    install_service_checks()
    if enforce:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


# --- what moto's enforcement lacks for a whole deployment -------------------------------------
# The IAM action prefix of each botocore service whose operations are their IAM actions (Service
# Authorization Reference); S3's actions differ from its operations and moto names them itself.
IAM_PREFIX = {
    "kms": "kms", "firehose": "firehose", "kinesis": "kinesis", "logs": "logs", "lambda": "lambda",
    "rds": "rds", "iam": "iam", "sts": "sts", "cloudwatch": "cloudwatch",
    "resourcegroupstaggingapi": "tag", "sns": "sns", "events": "events", "securityhub": "securityhub",
    "glue": "glue", "athena": "athena",
}
# Operations whose IAM action has another name (Service Authorization Reference, AWS Lambda:
# "InvokeFunction ... Grants permission to invoke a function", the permission of the Invoke API).
# SNS's PublishBatch is authorized as sns:Publish (SNS API Reference, PublishBatch: "The
# PublishBatch API ... requires the same permission as Publish"; the Service Authorization
# Reference lists no sns:PublishBatch action).
ACTION_OF_OPERATION = {"lambda:Invoke": "lambda:InvokeFunction", "sns:PublishBatch": "sns:Publish"}
# The Admin layer puts the operation the botocore model gives the request (contract.py) here.
OPERATION_HEADER = "HTTP_X_DASEMU_OPERATION"
_base_init = IAMRequestBase.__init__


def _init_with_the_modelled_action(self, *args, **kwargs):
    """moto names the action after the signature's service (`monitoring:`, `tagging:`) and, for
    REST APIs, not always after the operation; IAM names it `<prefix>:<Operation>`."""
    _base_init(self, *args, **kwargs)
    operation = self._headers.get("X-Dasemu-Operation", "")
    service, _, name = operation.partition(":")
    prefix = IAM_PREFIX.get({"tagging": "resourcegroupstaggingapi", "monitoring": "cloudwatch"}.get(service, service))
    if prefix and name:
        self._action = f"{prefix}:{name}"
        self._action = ACTION_OF_OPERATION.get(self._action, self._action)


def _arn(self, service, resource, region=True):
    partition = get_partition(self.region)
    return f"arn:{partition}:{service}:{self.region if region else ''}:{self.current_account}:{resource}"


def _json_param(self, name):
    try:
        return json.loads(self.body or b"{}").get(name)
    except (ValueError, AttributeError):
        return None


def _lambda_resource(self):
    from urllib.parse import unquote

    m = re.match(r"/[0-9-]+/functions/([^/]+)", self.path)
    name = unquote(m.group(1)) if m else _json_param(self, "FunctionName")
    if not name:
        return "*"
    return name if name.startswith("arn:") else _arn(self, "lambda", f"function:{name}")


def _firehose_resource(self):
    name = _json_param(self, "DeliveryStreamName")
    return _arn(self, "firehose", f"deliverystream/{name}") if name else "*"


def _logs_resource(self):
    group = _json_param(self, "logGroupName")
    if not group:
        return "*"  # DescribeLogGroups
    stream = _json_param(self, "logStreamName")
    return _arn(self, "logs", f"log-group:{group}" + (f":log-stream:{stream}" if stream else ""))


def _rds_resource(self):
    params = {k: v[0] for k, v in self.querystring.items()} if self.querystring else {}
    if params.get("ResourceArn"):
        return params["ResourceArn"]
    if params.get("DBClusterIdentifier"):
        return _arn(self, "rds", f"cluster:{params['DBClusterIdentifier']}")
    if params.get("DBInstanceIdentifier"):
        return _arn(self, "rds", f"db:{params['DBInstanceIdentifier']}")
    if params.get("DBClusterParameterGroupName"):
        return _arn(self, "rds", f"cluster-pg:{params['DBClusterParameterGroupName']}")
    action = params.get("Action", "")
    if action == "DescribeDBInstances":
        return _arn(self, "rds", "db:*")
    if action == "DescribeDBClusters":
        return _arn(self, "rds", "cluster:*")
    return "*"


def _form_param(self, name):
    data = self.querystring if isinstance(getattr(self, "querystring", None), dict) else {}
    value = data.get(name)
    return value[0] if isinstance(value, list) and value else value


def _sns_resource(self):
    """The topic (SNS's resource type in the Service Authorization Reference): `TopicArn`, the
    `ResourceArn` of a tagging call, or the topic `CreateTopic` names."""
    arn = _form_param(self, "TopicArn") or _form_param(self, "ResourceArn")
    if arn:
        return arn
    name = _form_param(self, "Name")
    return _arn(self, "sns", name) if name else "*"


def _events_resource(self):
    """PutEvents: the event bus of its entries (`EventBusName`, a name or an ARN; the default
    bus when absent; EventBridge API reference, PutEventsRequestEntry)."""
    entries = _json_param(self, "Entries") or []
    bus = next((e.get("EventBusName") for e in entries if isinstance(e, dict)), None) or "default"
    return bus if bus.startswith("arn:") else _arn(self, "events", f"event-bus/{bus}")


def _securityhub_resource(self):
    """BatchImportFindings: the product its findings name (`ProductArn`; Service Authorization
    Reference, AWS Security Hub: the `product` resource type); DescribeHub and the rest: the
    account's hub (`hub/default`)."""
    findings = _json_param(self, "Findings") or []
    products = {f.get("ProductArn") for f in findings if isinstance(f, dict)}
    if self.path.endswith("/findings/import"):
        return products.pop() if len(products) == 1 else "arn:aws:securityhub:unknown"
    return _arn(self, "securityhub", "hub/default")


def glue_resources(self):
    """The Data Catalog resources a Glue request is authorized on, every one of which must be
    allowed (Glue Developer Guide, "Specifying AWS Glue resource ARNs": "CreateTable ... requires
    ARNs for the catalog, the database and the table"; DeleteDatabase also all tables and
    user-defined functions of the database; the tagging calls, the ARN they name)."""
    params = {}
    try:
        params = json.loads(self.body or b"{}")
    except ValueError:
        pass
    if not isinstance(params, dict):
        return ["*"]
    if params.get("ResourceArn"):
        return [params["ResourceArn"]]
    catalog = _arn(self, "glue", "catalog")
    database = params.get("DatabaseName") or params.get("Name") or (params.get("DatabaseInput") or {}).get("Name")
    if not database:
        return [catalog]
    if params.get("DatabaseName"):  # a table's operation
        table = params.get("Name") or (params.get("TableInput") or {}).get("Name") or "*"
        return [_arn(self, "glue", f"table/{database}/{table}"), catalog, _arn(self, "glue", f"database/{database}")]
    found = [_arn(self, "glue", f"database/{database}"), catalog]
    if self.headers.get("X-Amz-Target", "").endswith(".DeleteDatabase"):
        found += [_arn(self, "glue", f"table/{database}/*"), _arn(self, "glue", f"userDefinedFunction/{database}/*")]
    return found


# The further resources of the Glue request this thread serves (the server runs one request per
# thread), computed where the request's region and account are known.
_glue_extra = threading.local()


def _glue_resource(self):
    found = glue_resources(self)
    _glue_extra.resources = found[1:]
    return found[0]


def _athena_resource(self):
    """The workgroup (Service Authorization Reference, Amazon Athena: the `workgroup` resource
    type): `WorkGroup`, `CreateWorkGroup`'s `Name`, or the tagging calls' `ResourceARN`; the
    primary workgroup when a query names none."""
    arn = _json_param(self, "ResourceARN")
    if arn:
        return arn
    name = _json_param(self, "WorkGroup") or _json_param(self, "Name") or "primary"
    return _arn(self, "athena", f"workgroup/{name}")


def _iam_resource(self):
    name = (self.data.get("RoleName") or [None])[0] if isinstance(self.data, dict) else None
    return f"arn:{get_partition(self.region)}:iam::{self.current_account}:role/{name}" if name else "*"


def _target_key_arn(request):
    from moto.kms.models import kms_backends

    try:
        params = json.loads(request._body or b"{}")
        account = request.account_id
        return kms_backends[account][request._region].describe_key(params["TargetKeyId"]).arn
    except Exception:
        return None


# Roles handed to a service: IAM checks iam:PassRole for each (IAM User Guide, "Granting a user
# permissions to pass a role to an AWS service").
PASSES_ROLES = {"lambda:CreateFunction", "lambda:UpdateFunctionConfiguration",
                "firehose:CreateDeliveryStream", "firehose:UpdateDestination"}


def _check_action_permitted_fully(self, resource):
    _check_action_permitted(self, resource)
    if self._action.startswith("glue:"):
        for extra in getattr(_glue_extra, "resources", []):
            if not allowed(self._access_key.collect_policies(), self._action, extra, {}):
                self._raise_access_denied()
    if self._action in ("kms:CreateAlias", "kms:UpdateAlias"):
        target = _target_key_arn(self)
        if target and not allowed(self._access_key.collect_policies(), self._action, target, {}):
            self._raise_access_denied()
    if self._action in PASSES_ROLES:
        text = self._body.decode("utf-8", "replace") if isinstance(self._body, bytes) else str(self._body or "")
        for role in sorted(set(re.findall(r'"(?:Role|RoleARN)":\s*"(arn:[^"]+:role/[^"]+)"', text))):
            service = "lambda.amazonaws.com" if self._action.startswith("lambda:") else "firehose.amazonaws.com"
            if not allowed(self._access_key.collect_policies(), "iam:PassRole", role,
                           {"iam:PassedToService": service}):
                action, self._action = self._action, "iam:PassRole"
                try:
                    self._raise_access_denied()
                finally:
                    self._action = action


def _signature_not_checked(self):
    """moto checks a signature by re-signing the request as it reconstructs it: its body from
    parsed parameters, which for bodiless REST requests (Lambda's GET /functions/{name}) and for
    IAM's form bodies is not what the client signed, so those fail SignatureDoesNotMatch. The
    emulator tests authorization, not signing (the AWS SDK's signer is AWS's): the access key id
    names the principal and its secret is not checked."""
    return None


# S3's IAM actions per request (Service Authorization Reference, "Actions defined by Amazon S3";
# S3 User Guide, "Amazon S3 actions"), where moto's table names operations instead (HeadBucket is
# s3:ListBucket) or lacks the sub-resource (encryption, ownershipControls, publicAccessBlock fall
# to its DEFAULT: ListBucket or CreateBucket).
S3_BUCKET_ACTIONS = {
    "HEAD": {"DEFAULT": "ListBucket"},
    "GET": {"uploads": "ListBucketMultipartUploads", "location": "GetBucketLocation",
            "lifecycle": "GetLifecycleConfiguration", "versioning": "GetBucketVersioning",
            "policy": "GetBucketPolicy", "tagging": "GetBucketTagging", "versions": "ListBucketVersions",
            "publicAccessBlock": "GetBucketPublicAccessBlock", "encryption": "GetEncryptionConfiguration",
            "ownershipControls": "GetBucketOwnershipControls", "acl": "GetBucketAcl",
            "object-lock": "GetBucketObjectLockConfiguration", "DEFAULT": "ListBucket"},
    "PUT": {"lifecycle": "PutLifecycleConfiguration", "versioning": "PutBucketVersioning",
            "policy": "PutBucketPolicy", "tagging": "PutBucketTagging",
            "publicAccessBlock": "PutBucketPublicAccessBlock", "encryption": "PutEncryptionConfiguration",
            "ownershipControls": "PutBucketOwnershipControls", "acl": "PutBucketAcl",
            "object-lock": "PutBucketObjectLockConfiguration", "DEFAULT": "CreateBucket"},
    "DELETE": {"policy": "DeleteBucketPolicy", "lifecycle": "PutLifecycleConfiguration",
               "tagging": "PutBucketTagging", "publicAccessBlock": "PutBucketPublicAccessBlock",
               "DEFAULT": "DeleteBucket"},
    "POST": {"delete": "DeleteObject", "DEFAULT": "PutObject"},
}
# Objects: moto's table, plus Object Lock's reads and writes. The last sub-resource in the query
# that a row names wins, so `?retention&versionId=` is s3:GetObjectRetention, as in AWS (the
# Service Authorization Reference lists no separate "version" action for retention).
S3_KEY_ACTIONS = {
    "HEAD": {"DEFAULT": "GetObject"},
    "GET": {"uploadId": "ListMultipartUploadParts", "acl": "GetObjectAcl", "tagging": "GetObjectTagging",
            "versionId": "GetObjectVersion", "retention": "GetObjectRetention",
            "legal-hold": "GetObjectLegalHold", "DEFAULT": "GetObject"},
    "PUT": {"acl": "PutObjectAcl", "tagging": "PutObjectTagging", "retention": "PutObjectRetention",
            "legal-hold": "PutObjectLegalHold", "DEFAULT": "PutObject"},
    "DELETE": {"uploadId": "AbortMultipartUpload", "versionId": "DeleteObjectVersion", "DEFAULT": "DeleteObject"},
    "POST": {"uploads": "PutObject", "restore": "RestoreObject", "uploadId": "PutObject", "select": "SelectObject"},
}


def install_deployment_checks():
    """Resources and actions as IAM names them for every service das-setup calls, so a principal
    holding exactly policies/deployer.json can run it under --enforce-iam."""
    from moto.awslambda.responses import LambdaResponse
    from moto.events.responses import EventsHandler
    from moto.sns.responses import SNSResponse
    from moto.firehose.responses import FirehoseResponse
    from moto.iam.responses import IamResponse
    from moto.logs.responses import LogsResponse
    from moto.rds.responses import RDSResponse
    from moto.securityhub.responses import SecurityHubResponse
    from moto.glue.responses import GlueResponse
    from moto.athena.responses import AthenaResponse

    from moto.s3 import responses as s3_responses

    s3_responses.ACTION_MAP["BUCKET"] = S3_BUCKET_ACTIONS
    s3_responses.ACTION_MAP["KEY"] = S3_KEY_ACTIONS
    IAMRequestBase.__init__ = _init_with_the_modelled_action
    IAMRequestBase.check_signature = _signature_not_checked
    IAMRequestBase.check_action_permitted = _check_action_permitted_fully
    LambdaResponse._determine_resource = _lambda_resource
    FirehoseResponse._determine_resource = _firehose_resource
    LogsResponse._determine_resource = _logs_resource
    RDSResponse._determine_resource = _rds_resource
    IamResponse._determine_resource = _iam_resource
    SNSResponse._determine_resource = _sns_resource
    EventsHandler._determine_resource = _events_resource
    SecurityHubResponse._determine_resource = _securityhub_resource
    GlueResponse._determine_resource = _glue_resource
    AthenaResponse._determine_resource = _athena_resource


# --- checks AWS makes beyond the action itself --------------------------------------------------
def _caller(response):
    """(principal ARN, its identity policies) of a request under enforcement, or None for the root
    and while nothing is enforced."""
    if not enforced():
        return None
    key_id, _ = credential(response.headers.get("Authorization"))
    if key_id is None or key_id in ROOT_ACCESS_KEYS:
        return None
    from moto.iam.access_control import create_access_key

    access_key = create_access_key(account_id=response.current_account, partition=get_partition(response.region),
                                   access_key_id=key_id, headers=dict(response.headers))
    return principal_of(key_id), access_key.collect_policies()


def _lists(value):
    return value if isinstance(value, list) else [value]


def _key_policy_lets_caller_put_key_policy(document, caller, policies, account, key="*", context=None):
    """KMS's policy lockout safety check: "The key policy must allow the calling principal to make
    a subsequent PutKeyPolicy request on the KMS key" (CreateKey API reference, Policy). A
    statement for the account (its root) delegates the question to the caller's IAM policies."""
    import fnmatch

    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = _lists(statement.get("Action", []))
        if not any(fnmatch.fnmatchcase("kms:PutKeyPolicy".lower(), a.lower()) for a in actions):
            continue
        principal = statement.get("Principal", {})
        named = _lists(principal.get("AWS", [])) if isinstance(principal, dict) else _lists(principal)
        for p in named:
            if p in ("*", caller):
                return True
            if p in (account, f"arn:aws:iam::{account}:root"):
                if allowed(policies, "kms:PutKeyPolicy", key, context or {}):
                    return True
    return False


class InvalidAccessException(JsonRESTError):
    code = 401

    def __init__(self, message):
        super().__init__("InvalidAccessException", message)


class MalformedPolicyDocumentException(JsonRESTError):
    code = 400

    def __init__(self, message):
        super().__init__("MalformedPolicyDocumentException", message)


def install_service_checks():
    from moto.awslambda.responses import LambdaResponse
    from moto.kms.responses import KmsResponse
    from moto.s3.responses import S3Response
    from moto.sns.exceptions import SNSException
    from moto.sns.responses import SNSResponse

    class KMSAccessDenied(SNSException):
        code = "KMSAccessDenied"
        message = "The ciphertext references a key that doesn't exist or that you don't have access to."

    create_key = KmsResponse.create_key

    def create_key_with_the_lockout_check(self):
        caller = _caller(self)
        params = json.loads(self.body or b"{}")
        if caller and params.get("Policy") and not params.get("BypassPolicyLockoutSafetyCheck"):
            try:
                document = json.loads(params["Policy"])
            except ValueError:
                document = {}
            if not _key_policy_lets_caller_put_key_policy(document, caller[0], caller[1], self.current_account):
                raise MalformedPolicyDocumentException(
                    "The new key policy will not allow you to update the key policy in the future.")
        return create_key(self)

    put_key_policy = KmsResponse.put_key_policy

    def put_key_policy_with_the_lockout_check(self):
        """The same check on PutKeyPolicy: "the key policy must allow the principal that is
        making the PutKeyPolicy request to make a subsequent PutKeyPolicy request on the KMS
        key" (PutKeyPolicy API reference, BypassPolicyLockoutSafetyCheck)."""
        caller = _caller(self)
        params = json.loads(self.body or b"{}")
        if caller and not params.get("BypassPolicyLockoutSafetyCheck"):
            try:
                document = json.loads(params.get("Policy") or "{}")
                key = self.kms_backend.describe_key(params.get("KeyId", "")).arn
            except Exception:
                return put_key_policy(self)  # KMS answers the malformed or unknown itself
            if not _key_policy_lets_caller_put_key_policy(document, caller[0], caller[1], self.current_account,
                                                          key, key_tags(key)):
                raise MalformedPolicyDocumentException(
                    "The new key policy will not allow you to update the key policy in the future.")
        return put_key_policy(self)

    from moto.securityhub.responses import SecurityHubResponse

    batch_import_findings = SecurityHubResponse.batch_import_findings

    def batch_import_findings_where_enabled(self):
        """Security Hub takes findings only in an account and region where it is enabled:
        otherwise 401 InvalidAccessException, "Account is not subscribed to AWS Security Hub"
        (BatchImportFindings API reference, Errors; moto imports them anyway)."""
        if not self.securityhub_backend.enabled:
            raise InvalidAccessException("Account is not subscribed to AWS Security Hub")
        return batch_import_findings(self)

    get_function = LambdaResponse.get_function

    def get_function_with_tags_for_list_tags_only(self):
        """"Lambda returns tag data only if you have explicit allow permissions for
        lambda:ListTags" (GetFunction API reference, Tags)."""
        body = get_function(self)
        caller = _caller(self)
        if caller is None:
            return body
        try:
            document = json.loads(body)
        except (TypeError, ValueError):
            return body
        arn = (document.get("Configuration") or {}).get("FunctionArn", "")
        if not allowed(caller[1], "lambda:ListTags", arn.split(":$")[0], {}):
            # The answer says why it has no tags (GetFunction API reference, TagsError: "details
            # about an error related to retrieving tags").
            document.pop("Tags", None)
            document["TagsError"] = {"ErrorCode": "AccessDeniedException",
                                     "Message": f"User: {caller[0]} is not authorized to perform: lambda:ListTags "
                                                f"on resource: {arn}"}
        return json.dumps(document)

    put_object = S3Response.put_object

    def put_object_with_the_bucket_key(self):
        """With SSE-KMS, S3 asks KMS for a data key with the writer's permissions: the writer
        needs kms:GenerateDataKey on the bucket's key ("Protecting data with server-side
        encryption using AWS KMS keys", S3 User Guide; "AccessDenied" otherwise)."""
        caller = _caller(self)
        if caller is not None:
            try:
                rules = (self.backend.get_bucket_encryption(self.bucket_name) or {}).get("Rule", [])
            except Exception:
                rules = []
            for rule in _lists(rules):
                default = (rule or {}).get("ApplyServerSideEncryptionByDefault", {})
                key = default.get("KMSMasterKeyID")
                if default.get("SSEAlgorithm") == "aws:kms" and key:
                    from moto.kms.models import kms_backends

                    try:
                        arn = kms_backends[self.current_account][self.region].describe_key(key).arn
                    except Exception:
                        arn = key
                    if not allowed(caller[1], "kms:GenerateDataKey", arn, {}):
                        from moto.s3.exceptions import S3AccessDeniedError

                        raise S3AccessDeniedError()
        return put_object(self)

    def publishing_with_the_topic_key(publish):
        """An encrypted topic (KmsMasterKeyId): SNS asks KMS for the message's data key with the
        publisher's permissions, so the publisher needs kms:GenerateDataKey and kms:Decrypt on the
        topic's key (SNS Developer Guide, "Key management": "publishers ... must have the
        kms:GenerateDataKey* and kms:Decrypt permissions"), asked through SNS (kms:ViaService
        sns.<region>.amazonaws.com, KMS Developer Guide, "kms:ViaService"); otherwise 400
        KMSAccessDenied (Publish and PublishBatch API reference, Errors)."""

        def checked(self):
            caller = _caller(self)
            if caller is not None:
                try:
                    key = self.backend.get_topic(self._get_param("TopicArn")).kms_master_key_id
                except Exception:
                    key = ""
                if key:
                    from moto.kms.models import kms_backends

                    try:
                        arn = kms_backends[self.current_account][self.region].describe_key(key).arn
                    except Exception:
                        raise KMSAccessDenied()
                    via = {"kms:ViaService": f"sns.{self.region}.amazonaws.com"}
                    if not all(allowed(caller[1], action, arn, via)
                               for action in ("kms:GenerateDataKey", "kms:Decrypt")):
                        raise KMSAccessDenied()
            return publish(self)

        return checked

    SNSResponse.publish = publishing_with_the_topic_key(SNSResponse.publish)
    SNSResponse.publish_batch = publishing_with_the_topic_key(SNSResponse.publish_batch)
    KmsResponse.create_key = create_key_with_the_lockout_check
    KmsResponse.put_key_policy = put_key_policy_with_the_lockout_check
    SecurityHubResponse.batch_import_findings = batch_import_findings_where_enabled
    LambdaResponse.get_function = get_function_with_tags_for_list_tags_only
    S3Response.put_object = put_object_with_the_bucket_key
