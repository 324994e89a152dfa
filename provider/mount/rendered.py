"""Each volume's last rendered files and versions, served again while Vault's answers say the same.

Why: a rotation poll mostly finds every secret unchanged, yet rendering each object's file,
its HMAC version and the checks on the volume was a tenth of a warm poll's CPU. What an
object writes is a function of its configuration (the same `MountConfig`, which repeated
requests share) and of the parts of its answers it reads: the `data` map, or for a
template or the whole response envelope (no `secretKey`) the whole answer. Those parts
are the answers' signature; the Mounter keeps each volume's rendering with it
(`per_volume`), and any difference renders afresh.

Kept renderings hold secrets in memory, as the lease cache holds Vault's answers; never
on disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provider.mount.leases import Fetched
from provider.mount.object_files import reads_whole_answer
from provider.mount.plan import MountPlan
from provider.render.extract import response_data
from provider.request.vault_request import VaultRequest

__all__ = ["answer_signature"]


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
