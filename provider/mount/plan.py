"""A Mount's plan: what each object reads, and each distinct request with the first object needing it.

Equal requests (path, query, method AND arguments) go out once per Mount, so that a
username and password come from one database lease and a certificate and its key
from one issuance. A template's calls are requests like any other object's; on KV v2
mounts its reads go to the data path, as Vault Agent sends them (`resolve`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from provider.request.objects import SecretObject
from provider.request.vault_request import VaultRequest

__all__ = ["MountPlan", "PlannedObject"]

Answer = TypeVar("Answer")


@dataclass(frozen=True)
class PlannedObject:
    """One object and the request sent for each request it names (same order)."""

    obj: SecretObject
    sent: tuple[VaultRequest, ...]

    def answers(self, answered: Mapping[VaultRequest, Answer]) -> dict[VaultRequest, Answer]:
        """Keyed by the requests the object names, answered by the ones sent for them."""
        return {named: answered[sent] for named, sent in zip(self.obj.requests, self.sent, strict=True)}


@dataclass(frozen=True)
class MountPlan:
    objects: tuple[PlannedObject, ...]
    # Each distinct request, in object order, and the first object sending it (errors name it).
    first_user: Mapping[VaultRequest, SecretObject] = field(compare=False)
    # Requests only optional objects send: for those a 404 is an absent secret, not a failure.
    optional_only: frozenset[VaultRequest] = frozenset()

    @classmethod
    def of(
        cls,
        objects: tuple[SecretObject, ...],
        resolve: Callable[[VaultRequest], VaultRequest] | None = None,
    ) -> MountPlan:
        """The plan for `objects`; `resolve` maps a template's requests to what is sent for them."""
        planned = tuple(
            PlannedObject(
                obj,
                tuple(map(resolve, obj.requests))
                if resolve is not None and obj.template is not None
                else obj.requests,
            )
            for obj in objects
        )
        first: dict[VaultRequest, SecretObject] = {}
        required: set[VaultRequest] = set()
        for item in planned:
            for request in item.sent:
                known = first.get(request)
                if known is None or (known.optional and not item.obj.optional):
                    # Errors name the first object that needs the answer, not one that may go without.
                    first[request] = item.obj
                if not item.obj.optional:
                    required.add(request)
        return cls(planned, first, frozenset(first.keys() - required))

    @property
    def requests(self) -> list[VaultRequest]:
        """Every distinct request, in object order."""
        return list(self.first_user)
