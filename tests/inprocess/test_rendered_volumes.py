"""The Mounter serves a volume's last rendering again only while Vault's answers say the same.

A poll repeats its request byte for byte, so it shares the parsed config; every change
an object could write must render afresh: a secret's value, an optional secret that
appears, and for an object that writes the whole envelope any field of the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fake_vault import FakeVault, answer
from inprocess_kit import ISSUER, NAMESPACE, POD, config_for, mount_request, spc

from provider.mount.mounter import MountResult
from provider.serve.composition import Provider
from provider.vault.deadline import Deadline

KV = "/v1/secret/data/app"
JWT = ISSUER.mint(NAMESPACE, POD.service_account, POD.name, POD.uid)
# One key, another key, and the whole data map of one secret.
KEYS = spc(
    """
    - objectName: password
      secretPath: secret/data/app
      secretKey: password
    - objectName: user
      secretKey: username
      secretPath: secret/data/app
    - objectName: all.json
      secretPath: secret/data/app
      format: data
    """
)
ENVELOPE = spc(
    """
    - objectName: whole
      secretPath: secret/data/app
    """
)


def polls(provider: Provider, parameters: dict[str, str]) -> Iterator[MountResult]:
    """Mounts of one request again and again, as the driver's rotation sends it."""
    request = mount_request(parameters, jwt=JWT)
    while True:
        yield provider.mounter.mount(config_for(request), Deadline(10))


def contents(result: MountResult) -> dict[str, bytes]:
    return {file.path: file.contents for file in result.files}


def kv_answer(data: dict[str, Any], request_id: str) -> Any:
    return answer(
        200,
        {
            "request_id": request_id,
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": {"data": data, "metadata": {"version": 1}},
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        },
    )


def test_unchanged_answers_serve_the_last_rendering_and_each_poll_its_own_records(
    provider: Provider, fake: FakeVault
) -> None:
    poll = polls(provider, KEYS)
    first, second = next(poll), next(poll)
    assert second.files is first.files
    assert second.versions == first.versions
    assert [record.source for record in second.records] == ["new"] * 3
    assert len(fake.to(KV)) == 2  # each poll still reads the secret


def test_a_changed_secret_is_rendered_afresh_with_a_new_version(provider: Provider, fake: FakeVault) -> None:
    poll = polls(provider, KEYS)
    first = next(poll)
    fake.put("app", {"username": "app", "password": "battery-staple"})
    second = next(poll)
    assert contents(second) == {
        "password": b"battery-staple",
        "user": b"app",
        "all.json": b'{"password":"battery-staple","username":"app"}',
    }
    assert dict(second.versions)["password"] != dict(first.versions)["password"]
    assert dict(second.versions)["user"] == dict(first.versions)["user"]


def test_a_key_object_ignores_what_it_does_not_read_of_the_answer(
    provider: Provider, fake: FakeVault
) -> None:
    data = {"username": "app", "password": "correct-horse"}
    fake.fail_next(KV, kv_answer(data, "request-1"), kv_answer(data, "request-2"))
    poll = polls(provider, KEYS)
    first, second = next(poll), next(poll)
    assert second.files is first.files


def test_an_envelope_object_follows_any_change_of_the_answer(provider: Provider, fake: FakeVault) -> None:
    data = {"username": "app", "password": "correct-horse"}
    fake.fail_next(
        KV, kv_answer(data, "request-1"), kv_answer(data, "request-2"), kv_answer(data, "request-2")
    )
    poll = polls(provider, ENVELOPE)
    first, second, third = next(poll), next(poll), next(poll)
    assert b'"request_id":"request-1"' in contents(first)["whole"]
    assert b'"request_id":"request-2"' in contents(second)["whole"]
    assert second.versions != first.versions
    assert third.files is second.files


def test_an_optional_secret_that_appears_is_written_on_the_next_poll(
    provider: Provider, fake: FakeVault
) -> None:
    optional = spc(
        """
        - objectName: user
          secretPath: secret/data/app
          secretKey: username
        - objectName: later
          secretPath: secret/data/later
          secretKey: value
          optional: true
        """
    )
    poll = polls(provider, optional)
    first, second = next(poll), next(poll)
    assert contents(first) == contents(second) == {"user": b"app"}
    assert dict(second.versions)["later"] == "absent"
    fake.put("later", {"value": "here now"})
    third = next(poll)
    assert contents(third) == {"user": b"app", "later": b"here now"}
    assert dict(third.versions)["later"] != "absent"
