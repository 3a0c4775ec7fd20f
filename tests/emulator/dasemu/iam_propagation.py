"""IAM's eventual consistency, as Lambda and Firehose show it: for `delay` seconds after a role
is created, a service that is handed the role cannot assume it yet.

AWS documents the delay ("Changes that I make are not always immediately visible ... IAM uses a
distributed computing model called eventual consistency", IAM User Guide, Troubleshooting IAM)
but no distinct error for it. The answers are the services' generic errors with the messages
they give in that case:

- Lambda CreateFunction / UpdateFunctionConfiguration: 400 InvalidParameterValueException "The
  role defined for the function cannot be assumed by Lambda." (the Lambda API reference lists
  InvalidParameterValueException for both; the message is the one terraform-provider-aws retries
  on for IAM propagation, internal/service/lambda/function.go);
- Firehose CreateDeliveryStream / UpdateDestination: 400 InvalidArgumentException "Firehose is
  unable to assume role <arn>. Please check the role provided." (likewise,
  internal/service/firehose/delivery_stream.go).

Off (delay 0) unless the server is started with --iam-propagation-delay.
"""

import datetime

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.responses import LambdaResponse
from moto.core.utils import utcnow
from moto.firehose.exceptions import InvalidArgumentException
from moto.firehose.responses import FirehoseResponse

_delay = 0.0


def _too_new(role_arn):
    """The role was created less than `delay` seconds ago."""
    if not _delay or not isinstance(role_arn, str):
        return False
    from moto.iam.models import iam_backends

    for partitions in list(iam_backends.values()):
        for backend in list(partitions.values()):
            try:
                role = backend.get_role_by_arn(role_arn)
            except Exception:
                continue
            return utcnow() - role.create_date < datetime.timedelta(seconds=_delay)
    return False


def _lambda(original):
    def answer(self):
        if _too_new((self.json_body or {}).get("Role")):
            raise InvalidParameterValueException(
                "The role defined for the function cannot be assumed by Lambda.")
        return original(self)
    return answer


def _firehose(original, *paths):
    def answer(self):
        for path in paths:
            value = self._get_param(path[0]) or {}
            for key in path[1:]:
                value = value.get(key) if isinstance(value, dict) else None
            if _too_new(value):
                raise InvalidArgumentException(
                    f"Firehose is unable to assume role {value}. Please check the role provided.")
        return original(self)
    return answer


def install(delay):
    global _delay
    _delay = float(delay or 0)
    LambdaResponse.create_function = _lambda(LambdaResponse.create_function)
    LambdaResponse.update_function_configuration = _lambda(LambdaResponse.update_function_configuration)
    FirehoseResponse.create_delivery_stream = _firehose(
        FirehoseResponse.create_delivery_stream,
        ("KinesisStreamSourceConfiguration", "RoleARN"),
        ("ExtendedS3DestinationConfiguration", "RoleARN"))
    FirehoseResponse.update_destination = _firehose(
        FirehoseResponse.update_destination, ("ExtendedS3DestinationUpdate", "RoleARN"))
