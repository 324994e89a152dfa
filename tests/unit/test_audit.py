"""provider.audit: one JSON line per Mount, summaries of unchanged polls, never a value."""

from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from provider.mount.mounter import ObjectRecord
from provider.request.mount_request import PodIdentity, parse_mount_request
from provider.request.objects import SecretObject, parse_objects
from provider.serve.audit import AuditSink
from provider.settings import FlagError, parse_settings

POD = PodIdentity(namespace="team-a", name="app-0", uid="0b9f-uid", service_account="app")
TIME = "2026-11-28T12:00:00.000Z"
READ = (
    ObjectRecord("password", "/v1/secret/data/app/db", "GET", "v-one", "new"),
    ObjectRecord("username", "/v1/database/creds/app", "GET", "v-two", "kept"),
)
PLANTED_ARG = "planted-argument-value"
PLANTED_TOKEN = "planted-service-account-token"


def sink(unchanged: str = "summary") -> tuple[AuditSink, io.StringIO]:
    stream = io.StringIO()
    return AuditSink(stream, unchanged, clock=lambda: TIME), stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def requested() -> tuple[SecretObject, ...]:
    objects, problems = parse_objects(
        "- objectName: cert\n"
        "  secretPath: pki/issue/web\n"
        "  method: PUT\n"
        f"  secretArgs: {{common_name: {PLANTED_ARG}}}\n"
    )
    assert problems == []
    return objects


def test_successful_mount_is_one_full_record() -> None:
    """Time, pod, service account, SPC, code, duration and per object path, method, version, source."""
    audit, stream = sink()
    audit.record(POD, "app-secrets", "OK", 0.01234, READ)
    assert lines(stream) == [
        {
            "time": TIME,
            "pod": {"namespace": "team-a", "name": "app-0", "uid": "0b9f-uid"},
            "service_account": "app",
            "spc": "app-secrets",
            "code": "OK",
            "duration_ms": 12.3,
            "objects": [
                {
                    "name": "password",
                    "path": "/v1/secret/data/app/db",
                    "method": "GET",
                    "version": "v-one",
                    "source": "new",
                },
                {
                    "name": "username",
                    "path": "/v1/database/creds/app",
                    "method": "GET",
                    "version": "v-two",
                    "source": "kept",
                },
            ],
        }
    ]


def test_default_time_is_rfc3339_utc() -> None:
    """Without a clock the time is RFC 3339 in UTC, with a Z."""
    stream = io.StringIO()
    AuditSink(stream).record(POD, "app-secrets", "OK", 0.0, READ)
    (line,) = lines(stream)
    assert line["time"].endswith("Z")
    assert line["time"][10] == "T"


def test_unchanged_poll_is_summarised() -> None:
    """A second Mount of the same pod and SPC with the same versions is a short line."""
    audit, stream = sink()
    audit.record(POD, "app-secrets", "OK", 0.01, READ)
    audit.record(POD, "app-secrets", "OK", 0.01, READ)
    assert lines(stream)[1] == {
        "time": TIME,
        "pod": {"namespace": "team-a", "name": "app-0", "uid": "0b9f-uid"},
        "spc": "app-secrets",
        "code": "OK",
        "unchanged": True,
        "objects": 2,
    }


def rotated(record: ObjectRecord, version: str) -> ObjectRecord:
    return ObjectRecord(record.name, record.path, record.method, version, "new")


@pytest.mark.parametrize(
    ("pod", "spc", "read"),
    [
        pytest.param(POD, "app-secrets", (READ[0],), id="fewer-objects"),
        pytest.param(POD, "app-secrets", (READ[0], rotated(READ[1], "v-three")), id="new-version"),
        pytest.param(POD, "other-spc", READ, id="other-spc"),
        pytest.param(PodIdentity("team-a", "app-0", "new-uid", "app"), "app-secrets", READ, id="other-pod"),
    ],
)
def test_changed_mount_is_full(pod: PodIdentity, spc: str, read: tuple[ObjectRecord, ...]) -> None:
    """Any change of versions, or another pod or SPC, gets a full record."""
    audit, stream = sink()
    audit.record(POD, "app-secrets", "OK", 0.01, READ)
    audit.record(pod, spc, "OK", 0.01, read)
    second = lines(stream)[1]
    assert "unchanged" not in second
    assert [o["version"] for o in second["objects"]] == [o.version for o in read]


def test_failure_in_between_does_not_break_the_summary() -> None:
    """Versions are compared with the previous successful Mount; failures are always full."""
    audit, stream = sink()
    audit.record(POD, "app-secrets", "OK", 0.01, READ)
    audit.record(POD, "app-secrets", "UNAVAILABLE", 0.01, None, requested())
    audit.record(POD, "app-secrets", "OK", 0.01, READ)
    _, failed, third = lines(stream)
    assert "unchanged" not in failed
    assert third["unchanged"] is True


def test_full_mode_never_summarises() -> None:
    """With -audit-unchanged=full every Mount gets the full record."""
    audit, stream = sink("full")
    for _ in range(3):
        audit.record(POD, "app-secrets", "OK", 0.01, READ)
    records = lines(stream)
    assert len(records) == 3
    assert all(record["objects"][0]["version"] == "v-one" for record in records)


def test_failure_records_the_requested_objects_without_versions() -> None:
    """A failed Mount lists what it asked for: names, paths and methods, and the code."""
    audit, stream = sink()
    audit.record(POD, "app-secrets", "PERMISSION_DENIED", 0.5, None, requested())
    (line,) = lines(stream)
    assert line["code"] == "PERMISSION_DENIED"
    assert line["objects"] == [{"name": "cert", "path": "/v1/pki/issue/web", "method": "PUT"}]


def test_unparsed_request_records_no_objects() -> None:
    """A request rejected before its objects were parsed has an empty objects list."""
    audit, stream = sink()
    unknown = PodIdentity("team-a", "app-0", "unknown", "unknown")
    audit.record(unknown, "app-secrets", "INVALID_ARGUMENT", 0.001, None)
    (line,) = lines(stream)
    assert line["objects"] == []
    assert line["pod"]["uid"] == "unknown"


def test_no_token_secret_or_argument_value_reaches_the_record() -> None:
    """Records of a parsed request (token, secretArgs) hold none of the request's sensitive values."""
    attributes = json.dumps(
        {
            "csi.storage.k8s.io/pod.namespace": "team-a",
            "csi.storage.k8s.io/pod.name": "app-0",
            "csi.storage.k8s.io/pod.uid": "0b9f-uid",
            "csi.storage.k8s.io/serviceAccount.name": "app",
            "csi.storage.k8s.io/serviceAccount.tokens": json.dumps(
                {"vault": {"token": PLANTED_TOKEN, "expirationTimestamp": "2030-01-01T00:00:00Z"}}
            ),
            "secretProviderClass": "app-secrets",
            "roleName": "app",
            "objects": (
                "- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n"
                f"  secretArgs: {{common_name: {PLANTED_ARG}}}\n"
            ),
        }
    )
    config = parse_mount_request(attributes, "{}", "/target", "420")
    assert config.jwt == PLANTED_TOKEN
    audit, stream = sink("full")
    audit.record(config.pod, config.spc_name, "OK", 0.01, READ)
    audit.record(config.pod, config.spc_name, "FAILED_PRECONDITION", 0.01, None, config.objects)
    text = stream.getvalue()
    assert PLANTED_TOKEN not in text
    assert PLANTED_ARG not in text
    assert "secretArgs" not in text
    assert "roleName" not in text


def test_concurrent_writes_are_whole_lines(tmp_path: Path) -> None:
    """Mounts recording at once from many threads each produce one whole JSON line in the file."""
    path = tmp_path / "audit.jsonl"
    audit = AuditSink.open(str(path), "full")
    threads = 16
    per_thread = 200
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        pod = PodIdentity("team-a", f"app-{n}", f"uid-{n}", "app")
        barrier.wait()
        for _ in range(per_thread):
            audit.record(pod, "app-secrets", "OK", 0.01, READ * 20)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    audit.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == threads * per_thread
    assert {record["pod"]["name"] for record in records} == {f"app-{n}" for n in range(threads)}


def test_file_is_appended_to(tmp_path: Path) -> None:
    """Opening the sink again keeps earlier records (a restarted provider appends)."""
    path = tmp_path / "audit.jsonl"
    for _ in range(2):
        audit = AuditSink.open(str(path))
        audit.record(POD, "app-secrets", "OK", 0.01, READ)
        audit.close()
    assert len(path.read_text().splitlines()) == 2


def test_remembered_pairs_are_bounded() -> None:
    """Beyond its capacity the sink forgets the least recently seen pod/SPC pair (a full record again)."""
    stream = io.StringIO()
    audit = AuditSink(stream, clock=lambda: TIME, remembered=2)
    pods = [PodIdentity("team-a", f"app-{n}", f"uid-{n}", "app") for n in range(3)]
    for pod in pods:
        audit.record(pod, "app-secrets", "OK", 0.01, READ)
    audit.record(pods[2], "app-secrets", "OK", 0.01, READ)
    audit.record(pods[0], "app-secrets", "OK", 0.01, READ)
    assert [line.get("unchanged", False) for line in lines(stream)[3:]] == [True, False]


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_write_failure_warns_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that cannot write logs one warning and lets every Mount go on."""
    audit = AuditSink(BrokenStream())
    with caplog.at_level(logging.WARNING, logger="provider.audit"):
        for _ in range(3):
            audit.record(POD, "app-secrets", "OK", 0.01, READ)
    assert [r.getMessage() for r in caplog.records] == [
        "cannot write audit records (No space left on device); Mounts go on without them"
    ]


@pytest.mark.parametrize(
    ("argv", "log", "unchanged"),
    [
        pytest.param([], "", "summary", id="defaults"),
        pytest.param(["-audit-log=stdout"], "stdout", "summary", id="stdout"),
        pytest.param(
            ["-audit-log", "/var/log/a.jsonl", "-audit-unchanged=full"], "/var/log/a.jsonl", "full", id="full"
        ),
    ],
)
def test_audit_flags(argv: list[str], log: str, unchanged: str) -> None:
    """-audit-log (off when empty) and -audit-unchanged (summary by default)."""
    settings = parse_settings(argv, {})
    assert (settings.audit_log, settings.audit_unchanged) == (log, unchanged)


def test_audit_unchanged_is_validated() -> None:
    """Only summary or full."""
    with pytest.raises(FlagError) as caught:
        parse_settings(["-audit-unchanged=none"], {})
    assert str(caught.value) == "invalid -audit-unchanged 'none'; use summary or full"
