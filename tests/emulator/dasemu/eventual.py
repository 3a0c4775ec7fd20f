"""AWS's documented eventual consistency, on demand, beyond IAM's (iam_propagation.py):

- KMS aliases (`--alias-lag S`): "AWS KMS ... follows an eventual consistency model" and a new
  alias may take time to be visible (KMS API reference, CreateKey / CreateAlias; KMS Developer
  Guide, "Eventual consistency"). For S seconds after CreateAlias the alias is not found by
  DescribeKey or listed by ListAliases, while a second CreateAlias of it answers
  AlreadyExistsException: exactly what a quick second `up` meets.
- Lambda's `Inactive` state ("Lambda function states", Lambda Developer Guide: a function idle
  long enough becomes Inactive; invoking it makes it Pending, then Active): `POST
  /_dasemu/lambda {"function": NAME, "state": "Inactive"}` (admin.py) sets it, with the
  documented `StateReasonCode` `Idle`; the Firehose runner's invocation reactivates it.
"""

import time

ALIAS_LAG_SECONDS = 0.0


def _young(alias):
    created = getattr(alias, "_dasemu_created", None)
    return created is not None and time.monotonic() - created < ALIAS_LAG_SECONDS


def install(alias_lag_seconds=0.0):
    global ALIAS_LAG_SECONDS
    ALIAS_LAG_SECONDS = float(alias_lag_seconds)
    from moto.kms.models import KmsBackend

    create_alias = KmsBackend.create_alias
    list_aliases = KmsBackend.list_aliases
    from_alias = KmsBackend.get_key_id_from_alias

    def create_alias_noting_when(self, target_key_id, alias_name):
        alias = create_alias(self, target_key_id, alias_name)
        alias._dasemu_created = time.monotonic()
        return alias

    def list_aliases_seen(self, key_id=None):
        return [a for a in list_aliases(self, key_id) if not _young(a)]

    def key_of_a_seen_alias(self, alias_name):
        for key in self.keys.values():
            alias = key.aliases.get(alias_name)
            if alias is not None and _young(alias):
                return None
        return from_alias(self, alias_name)

    KmsBackend.create_alias = create_alias_noting_when
    KmsBackend.list_aliases = list_aliases_seen
    KmsBackend.get_key_id_from_alias = key_of_a_seen_alias

    from moto.awslambda.models import LambdaFunction

    configuration = LambdaFunction.get_configuration

    def configuration_with_the_state_reason(self, on_create=False):
        config = configuration(self, on_create)
        if getattr(self, "state_reason_code", None):
            config["StateReason"] = self.state_reason
            config["StateReasonCode"] = self.state_reason_code
        return config

    LambdaFunction.get_configuration = configuration_with_the_state_reason


def set_function_state(account, region, name, state):
    """The function's State as GetFunction(Configuration) reports it."""
    from moto.awslambda.models import lambda_backends

    fn = lambda_backends[account][region].get_function(name)
    fn.state = state
    if state == "Inactive":
        fn.state_reason = "The function is inactive and will be activated when it is next invoked."
        fn.state_reason_code = "Idle"
    else:
        fn.state_reason, fn.state_reason_code = None, None
    return {"function": name, "state": fn.state}
