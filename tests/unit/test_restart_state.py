"""provider.serve.restart_state: the caches saved to `-state-dir` and restored by the next process.

Two processes are two sets of caches with clocks of their own (monotonic clocks start
anew at boot); the file between them is the real one, in a temporary directory.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provider.mount.lease_cache import Held, LeaseCache, LeaseKey, token_owner
from provider.mount.token_cache import TokenCache, TokenKey, cached_token
from provider.render import gojson
from provider.serve.metrics import Metrics
from provider.serve.restart_state import TOUCH_INTERVAL_SECONDS, RestartState
from provider.serve.state_store import STATE_FILE, StateKeys, seal, write_state
from provider.vault.replies import VaultReply
from tests.unit.test_cache_records import sample

HMAC_KEY = b"h" * 32
TOKEN = "hvs.CAESIrestart-state-token"
PASSWORD = "A1a-restart-state-password"
BODY = (
    '{"lease_id":"database/creds/app/AbC","renewable":true,"lease_duration":3600,'
    f'"data":{{"username":"v-app-AbC","password":"{PASSWORD}","ttl":3.60e3}}}}'
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Process:
    """One provider process's caches and state, on its own monotonic clock."""

    def __init__(self, directory: Path, monotonic: float, wall: float, hmac_key: bytes = HMAC_KEY) -> None:
        self.clock, self.wall = Clock(monotonic), Clock(wall)
        self.tokens = TokenCache(10, self.clock)
        self.leases = LeaseCache(80, self.clock)
        self.metrics = Metrics()
        self.state = RestartState(
            directory,
            StateKeys.derive(hmac_key),
            self.tokens,
            self.leases,
            self.metrics,
            self.clock,
            self.wall,
        )

    def fill(self) -> None:
        token = cached_token(TOKEN, "entity-1", 3600, True, self.clock(), frozenset({"digest-1"}))
        self.tokens.get(sample(TokenKey), "digest-1", lambda: token, lambda _: None)
        payload = gojson.loads(BODY)
        now = self.clock()
        held = Held(
            VaultReply(200, payload),
            "database/creds/app/AbC",
            True,
            3600.0,
            now + 3600,
            now + 2400,
            token_owner(TOKEN),
        )
        self.leases.put(sample(LeaseKey), held)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(f"vault_csi_provider_{name}", labels)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_next_process_restores_tokens_and_kept_answers(tmp_path: Path) -> None:
    """Saved by one process, restored by the next one 60 s later on a fresh monotonic clock."""
    first = Process(tmp_path, monotonic=9000.0, wall=1_800_000_000.0)
    first.fill()
    assert first.state.save_if_changed()
    data = (tmp_path / STATE_FILE).read_bytes()
    assert TOKEN.encode() not in data
    assert PASSWORD.encode() not in data
    assert b"v-app-AbC" not in data

    second = Process(tmp_path, monotonic=50.0, wall=1_800_000_060.0)
    second.state.restore()
    (token,) = second.tokens.snapshot()
    assert (token.key, token.token.value, token.token.verified) == (sample(TokenKey), TOKEN, False)
    assert token.token.expires_at == pytest.approx(50.0 - 60 + 3600)
    (lease,) = second.leases.snapshot()
    assert lease.key == sample(LeaseKey)
    assert gojson.dumps(lease.held.reply.payload) == gojson.dumps(gojson.loads(BODY))
    assert lease.held.refresh_at == pytest.approx(50.0 - 60 + 2400)
    assert second.metric("state_restored_entries", cache="token") == 1
    assert second.metric("state_restored_entries", cache="lease") == 1


def test_no_change_no_save_and_hits_are_saved_rarely(tmp_path: Path) -> None:
    process = Process(tmp_path, 100.0, 1_800_000_000.0)
    process.fill()
    assert process.state.save_if_changed() is True
    assert process.state.save_if_changed() is False
    assert process.leases.get(sample(LeaseKey)) is not None  # a hit: the last use moved
    assert process.state.save_if_changed() is False
    process.clock.now += TOUCH_INTERVAL_SECONDS
    assert process.state.save_if_changed() is True
    assert process.metric("state_saves_total", result="success") == 2


def test_a_hit_is_saved_at_shutdown(tmp_path: Path) -> None:
    process = Process(tmp_path, 100.0, 1_800_000_000.0)
    process.fill()
    process.state.save_if_changed()
    process.leases.get(sample(LeaseKey))
    process.state.close()
    assert process.metric("state_saves_total", result="success") == 2


def test_the_writer_saves_a_change_within_its_interval(tmp_path: Path) -> None:
    process = Process(tmp_path, 100.0, 1_800_000_000.0)
    process.state = RestartState(
        tmp_path,
        StateKeys.derive(HMAC_KEY),
        process.tokens,
        process.leases,
        process.metrics,
        process.clock,
        process.wall,
        interval=0.05,
    )
    process.state.start()
    try:
        process.fill()
        deadline = time.monotonic() + 5
        while not (tmp_path / STATE_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (tmp_path / STATE_FILE).exists()
    finally:
        process.state.close()


@pytest.mark.parametrize(
    ("data", "reason", "why"),
    [
        pytest.param(b"VCSPST", "truncated", "it is truncated (6 bytes)", id="truncated"),
        pytest.param(
            seal(StateKeys.derive(HMAC_KEY), b"{}")[:-3] + b"xyz",
            "corrupt",
            "it does not verify (corrupt, truncated or tampered with)",
            id="corrupt",
        ),
        pytest.param(
            seal(StateKeys.derive(b"another-node-key" * 2), b"{}"),
            "foreign",
            "it was written under another HMAC key",
            id="foreign",
        ),
        pytest.param(
            seal(StateKeys.derive(HMAC_KEY), b'{"format": 2}'),
            "unreadable",
            "its contents are not a state document this provider reads",
            id="another-document-format",
        ),
    ],
)
def test_a_file_that_does_not_verify_is_ignored_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, data: bytes, reason: str, why: str
) -> None:
    write_state(tmp_path, data)
    process = Process(tmp_path, 100.0, 1_800_000_000.0)
    process.state.restore()
    assert warnings(caplog) == [f"ignoring the restart state {tmp_path / STATE_FILE}: {why}; starting empty"]
    assert (len(process.tokens), len(process.leases)) == (0, 0)
    assert process.metric("state_files_ignored_total", reason=reason) == 1


def test_expired_entries_are_dropped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = Process(tmp_path, 100.0, 1_800_000_000.0)
    first.fill()
    first.state.save()
    later = Process(tmp_path, 100.0, 1_800_000_000.0 + 3601)
    later.state.restore()
    assert warnings(caplog) == ["dropped 2 entries of the restart state: 2 expired"]
    assert later.metric("state_dropped_entries_total", reason="expired") == 2
    assert later.metric("state_restored_entries", cache="token") == 0


def test_a_save_that_fails_is_logged_and_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file-not-directory"
    blocked.write_text("")
    process = Process(blocked, 100.0, 1_800_000_000.0)
    process.fill()
    assert process.state.save() is False
    assert warnings(caplog) == [f"cannot save the restart state to {blocked / STATE_FILE}: File exists"]
    assert process.metric("state_saves_total", result="failure") == 1
    assert TOKEN not in caplog.text


CHECK_IMPORTS = """
import sys
from provider.serve.composition import build_provider, vault_transports
from provider.settings import parse_settings
settings = parse_settings(sys.argv[1:])
provider = build_provider(settings, b"k" * 32, None, vault_transports(settings))
print("cryptography" in sys.modules)
provider.close()
"""


@pytest.mark.parametrize(
    ("flags", "imported"),
    [pytest.param([], "False", id="without-state-dir"), pytest.param(["-state-dir="], "True", id="with")],
)
def test_cryptography_is_imported_only_with_state_dir(
    tmp_path: Path, flags: list[str], imported: str
) -> None:
    """The Mount path and the idle provider do not pay for the AEAD library."""
    argv = [flag + str(tmp_path / "state") if flag == "-state-dir=" else flag for flag in flags]
    done = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS, *argv], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == imported
