"""Several conversations with Vault driven from one thread, their requests sent together.

A conversation is a generator: it yields each Vault request it needs and is sent the
reply, or has the request's ProviderError thrown in at the `yield`, so its code reads as
plain sequential calls (`reply = yield request`). `run_together` advances every
conversation to its next request, sends that round's requests at once
(`VaultSession.send_all`: all written before any answer is read) and goes on until each
has returned. A Mount's reads, lease look-ups and renewals so run in parallel at Vault
without a thread per request, which cost a warm poll more CPU than the reads themselves.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TypeVar

from provider.errors import ProviderError
from provider.request.vault_request import VaultRequest
from provider.vault.replies import VaultReply
from provider.vault.session import VaultSession

__all__ = ["Conversation", "run_alone", "run_together"]

T = TypeVar("T")

#: Yields the requests it needs, is sent their replies, returns its result.
Conversation = Generator[VaultRequest, VaultReply, T]


def run_alone(conversation: Conversation[T], session: VaultSession) -> T:
    """One conversation, each request sent as it comes; its ProviderError is raised."""
    outcome = run_together([conversation], session)[0]
    if isinstance(outcome, ProviderError):
        raise outcome
    return outcome


def run_together(conversations: Sequence[Conversation[T]], session: VaultSession) -> list[T | ProviderError]:
    """Each conversation's result or the ProviderError it ended with, in the order given.

    Conversations start in that order, so locks they take on their first step are taken in
    it too: callers that order their conversations the same way cannot deadlock each other.
    """
    outcomes: dict[int, T | ProviderError] = {}
    waiting: dict[int, VaultRequest] = {}

    def advance(index: int, answer: VaultReply | ProviderError | None) -> None:
        conversation = conversations[index]
        try:
            if isinstance(answer, ProviderError):
                request = conversation.throw(answer)
            else:
                request = conversation.send(answer)  # type: ignore[arg-type]  # None starts it
        except StopIteration as done:
            outcomes[index] = done.value
        except ProviderError as exc:
            outcomes[index] = exc
        else:
            waiting[index] = request

    try:
        for index in range(len(conversations)):
            advance(index, None)
        while waiting:
            indices = list(waiting)
            answers = session.send_all([waiting[index] for index in indices])
            waiting.clear()
            for index, answer in zip(indices, answers, strict=True):
                advance(index, answer)
    finally:
        # Only after a bug (an exception that is not ours): ends the others, releasing what they hold.
        for conversation in conversations:
            conversation.close()
    return [outcomes[index] for index in range(len(conversations))]
