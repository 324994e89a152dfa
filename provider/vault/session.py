"""A per-Mount way to Vault: the client, the target, the token and the deadline in one object.

Everything that talks to Vault on behalf of one Mount (the reads, lease look-ups and
renewals, the KV v2 mount check, the login) takes a session instead of threading the
same four arguments through every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from provider.errors import ProviderError
from provider.request.vault_request import VaultRequest
from provider.vault.client import VaultClient, VaultReply
from provider.vault.deadline import Deadline
from provider.vault.target import VaultTarget

__all__ = ["VaultSession"]


@dataclass(frozen=True)
class VaultSession:
    client: VaultClient
    target: VaultTarget
    deadline: Deadline
    token: str = field(default="", repr=False)  # "" before the login

    def send(self, request: VaultRequest) -> VaultReply:
        """The 2xx reply to `request`, sent with this session's token, or a ProviderError."""
        return self.client.send(self.target, request, self.deadline, self.token)

    def send_all(self, requests: Sequence[VaultRequest]) -> list[VaultReply | ProviderError]:
        """Each request's reply or error; all are sent before any answer is read (`VaultClient.send_all`)."""
        return self.client.send_all(self.target, requests, self.deadline, self.token)

    def with_token(self, token: str) -> VaultSession:
        return replace(self, token=token)
