"""Each volume's last rendered files and versions, served again while Vault's answers say the same.

Why: a rotation poll mostly finds every secret unchanged, yet rendering each object's file,
its HMAC version and the checks on the volume was a tenth of a warm poll's CPU. What an
object writes is a function of its configuration (the same `MountConfig`, which repeated
requests share) and of the parts of its answers it reads: the `data` map, or for a
template or the whole response envelope (no `secretKey`) the whole answer. The answers
are compared with those parts of the last poll's; any difference renders afresh.

Entries hold rendered secrets in memory, as the lease cache holds Vault's answers; never
on disk. Bounded: a node holds a few hundred volumes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from provider.mount.leases import Fetched
from provider.mount.object_files import reads_whole_answer
from provider.mount.plan import MountPlan
from provider.render.extract import response_data
from provider.request.mount_request import MountConfig
from provider.request.vault_request import VaultRequest

__all__ = ["RenderedVolumes", "answer_signature"]

# Volumes remembered; about one per volume on the node.
VOLUMES_KEPT = 256

Rendered = TypeVar("Rendered")


class RenderedVolumes(Generic[Rendered]):
    """The last rendering of each request configuration, with the answers it was made from."""

    def __init__(self) -> None:
        # id(config) -> (config, its answers' signature, the rendering): the config is held so
        # that its id cannot name another one.
        self._last: dict[int, tuple[MountConfig, tuple[Any, ...], Rendered]] = {}

    def rendered(
        self, config: MountConfig, signature: tuple[Any, ...], render: Callable[[], Rendered]
    ) -> Rendered:
        """The last rendering for `config` if its answers' signature is the same, else `render()` (kept)."""
        last = self._last.get(id(config))
        if last is not None and last[0] is config and last[1] == signature:
            return last[2]
        result = render()  # raises for an answer that renders no volume: nothing is kept
        if len(self._last) >= VOLUMES_KEPT:
            self._last.clear()
        self._last[id(config)] = (config, signature, result)
        return result


def answer_signature(plan: MountPlan, fetched: Mapping[VaultRequest, Fetched]) -> tuple[Any, ...]:
    """What the plan's objects read of each answer, in request order: (request, absent, part)."""
    whole = {sent for planned in plan.objects if reads_whole_answer(planned.obj) for sent in planned.sent}
    signature = []
    for request in plan.first_user:
        answer = fetched[request]
        payload = answer.reply.payload
        part = payload if request in whole or not isinstance(payload, dict) else response_data(payload)
        signature.append((request, answer.source == "absent", part))
    return tuple(signature)
