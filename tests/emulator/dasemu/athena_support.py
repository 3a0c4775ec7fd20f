"""Athena's workgroup calls as AWS answers them, where moto 5.2 differs or has nothing.

- GetWorkGroup of a workgroup that does not exist: AWS answers 400 InvalidRequestException (the
  only client error the Athena API reference lists for GetWorkGroup; Athena models no
  not-found error), its message saying the workgroup "is not found" (the text AWS's Terraform
  provider matches, `findWorkGroupByName`). moto answers 200 with `{"WorkGroup": null}`.
- UpdateWorkGroup (Athena API reference, UpdateWorkGroup, WorkGroupConfigurationUpdates): moto
  has no handler. Added for the members das-setup and the AWS console set: `Description`,
  `State` (ENABLED | DISABLED), and in `ConfigurationUpdates` `EnforceWorkGroupConfiguration`,
  `PublishCloudWatchMetricsEnabled`, `RequesterPaysEnabled`, `BytesScannedCutoffPerQuery` /
  `RemoveBytesScannedCutoffPerQuery`, and `ResultConfigurationUpdates`' `OutputLocation` /
  `RemoveOutputLocation` and `EncryptionConfiguration` / `RemoveEncryptionConfiguration`. A
  workgroup that does not exist: InvalidRequestException, as GetWorkGroup.
- CreateWorkGroup of a name that exists: InvalidRequestException (the API reference's error for
  a request Athena refuses), as moto already answers.
- ListTagsForResource of a workgroup without tags: AWS answers `{"Tags": []}` (the API
  reference: `Tags` is the list of the resource's tags); moto answers an error whenever the
  list is empty. Fixed for existing workgroups.

Queries themselves: athena_engine.py.
"""

import json

from moto.athena.responses import AthenaResponse


def _error(message):
    return json.dumps({"__type": "InvalidRequestException", "Message": message}), {"status": 400}


def _workgroups(self):
    return self.athena_backend.work_groups


def _missing(name):
    return _error(f"WorkGroup {name} is not found.")


_get_work_group = AthenaResponse.get_work_group


def get_work_group(self):
    name = self._get_param("WorkGroup")
    if name not in _workgroups(self):
        return _missing(name)
    return _get_work_group(self)


def update_work_group(self):
    name = self._get_param("WorkGroup")
    group = _workgroups(self).get(name)
    if group is None:
        return _missing(name)
    if self._get_param("Description") is not None:
        group.description = self._get_param("Description")
    state = self._get_param("State")
    if state is not None:
        if state not in ("ENABLED", "DISABLED"):
            return _error(f"State {state} is not ENABLED or DISABLED")
        group.state = state
    updates = self._get_param("ConfigurationUpdates") or {}
    config = group.configuration
    for member in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled",
                   "BytesScannedCutoffPerQuery"):
        if member in updates:
            config[member] = updates[member]
    if updates.get("RemoveBytesScannedCutoffPerQuery"):
        config.pop("BytesScannedCutoffPerQuery", None)
    results = updates.get("ResultConfigurationUpdates")
    if results is not None:
        current = config.setdefault("ResultConfiguration", {})
        for member in ("OutputLocation", "EncryptionConfiguration"):
            if member in results:
                current[member] = results[member]
            if results.get(f"Remove{member}"):
                current.pop(member, None)
    return "{}"


_list_tags_for_resource = AthenaResponse.list_tags_for_resource


def list_tags_for_resource(self):
    arn = self._get_param("ResourceARN") or ""
    name = arn.split(":workgroup/", 1)[1] if ":workgroup/" in arn else None
    if name is not None and name in _workgroups(self):
        return json.dumps(self.athena_backend.list_tags_for_resource(arn) or {"Tags": []})
    return _list_tags_for_resource(self)


def install():
    AthenaResponse.get_work_group = get_work_group
    AthenaResponse.update_work_group = update_work_group
    AthenaResponse.list_tags_for_resource = list_tags_for_resource
