"""Audit records from a real provider process: what pods read, written to the -audit-log file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import StartProvider, VaultEnv, pod_uid, unique

from provider.tools.driver import ProviderCallError

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_mounts_are_audited_and_unchanged_polls_summarised(
    start_provider: StartProvider, vault: VaultEnv, tmp_path: Path
) -> None:
    """A read, its unchanged repeat (summarised) and a denied Mount: three lines, no secret in them."""
    audit_log = tmp_path / "audit.jsonl"
    process = start_provider(f"-audit-log={audit_log}")
    path = unique("app/audit")
    planted = unique("planted-value")
    planted_arg = unique("planted-arg")
    vault.put_kv2(path, {"value": planted})
    readable = {
        "roleName": "app",
        "objects": f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n",
    }
    denied = {
        "roleName": "app",
        "objects": (
            f"- objectName: denied\n  secretPath: secret/data/forbidden/{path}\n  method: PUT\n"
            f"  secretArgs: {{data: {{value: {planted_arg}}}}}\n"
        ),
    }

    for _ in range(2):
        result = process.mount(readable, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT)
        assert result.files[0].contents == planted.encode()
    with pytest.raises(ProviderCallError):
        process.mount(denied, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT)
    process.stop()

    full, summary, failure = records(audit_log)
    pod = {"namespace": NAMESPACE, "name": "app-0", "uid": pod_uid(NAMESPACE, "app-0")}
    assert full["pod"] == pod
    assert full["service_account"] == SERVICE_ACCOUNT
    assert full["code"] == "OK"
    assert full["objects"] == [
        {
            "name": "value",
            "path": f"/v1/secret/data/{path}",
            "method": "GET",
            "version": result.versions["value"],
            "source": "new",
        }
    ]
    assert summary == {
        "time": summary["time"],
        "pod": pod,
        "spc": full["spc"],
        "code": "OK",
        "unchanged": True,
        "objects": 1,
    }
    assert failure["code"] == "PERMISSION_DENIED"
    assert failure["objects"] == [
        {"name": "denied", "path": f"/v1/secret/data/forbidden/{path}", "method": "PUT"}
    ]
    text = audit_log.read_text(encoding="utf-8")
    for secret in [planted, planted_arg, *process.tokens]:
        assert secret not in text


def test_a_template_object_is_recorded_once_per_read(
    start_provider: StartProvider, vault: VaultEnv, tmp_path: Path
) -> None:
    """Each Vault request a template reads is an entry with the object's name and version."""
    audit_log = tmp_path / "audit.jsonl"
    process = start_provider(f"-audit-log={audit_log}")
    first, second = unique("app/audit-a"), unique("app/audit-b")
    vault.put_kv2(first, {"a": "1"})
    vault.put_kv2(second, {"b": "2"})
    template = (
        f'{{{{ with secret "secret/data/{first}" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}'
        f'{{{{ with secret "secret/data/{second}" }}}}{{{{ .Data.data.b }}}}{{{{ end }}}}'
    )
    parameters = {"roleName": "app", "objects": f"- objectName: ab\n  template: '{template}'\n"}
    for _ in range(2):
        result = process.mount(parameters, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT)
    process.stop()

    full, summary = records(audit_log)
    assert result.files[0].contents == b"12"
    assert full["objects"] == [
        {
            "name": "ab",
            "path": f"/v1/secret/data/{path}",
            "method": "GET",
            "version": result.versions["ab"],
            "source": "new",
        }
        for path in (first, second)
    ]
    assert (summary["unchanged"], summary["objects"]) == (True, 1)
