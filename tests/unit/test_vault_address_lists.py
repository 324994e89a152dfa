"""Vault address lists: -vault-addr, VAULT_ADDR and vaultAddress naming the nodes of one cluster.

Parsed in provider.settings (split, trimmed, trailing slash dropped), checked element by
element in provider.mount.target_policy, bounded by -allowed-vault-addresses element by
element. One address behaves as before; the normalised list is the target's identity.
"""

from __future__ import annotations

from typing import Any

import pytest

from provider.address_lists import split_addresses
from provider.errors import InvalidRequest
from provider.mount.target_policy import resolve_target
from provider.request.mount_request import VaultOverrides
from provider.settings import FlagError, parse_settings
from provider.vault.target import VaultTarget, without_userinfo

N1, N2, N3 = "https://v1:8200", "https://v2:8200", "https://v3:8200"
PLANTED_PASSWORD = "planted-Pa55w0rd-77c1"


def resolve(flags: list[str], env: dict[str, str] | None = None, **spc: Any) -> VaultTarget:
    return resolve_target(parse_settings(flags, env or {}), VaultOverrides(**spc))


def refusal(flags: list[str], **spc: Any) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        resolve(flags, **spc)
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(N1, (N1,), id="one"),
        pytest.param(f"{N1},{N2},{N3}", (N1, N2, N3), id="three"),
        pytest.param(f" {N1}/ , {N2}/", (N1, N2), id="spaces-and-slashes"),
        pytest.param(f"{N1},,{N2}", (N1, "", N2), id="empty-kept-for-the-message"),
        pytest.param(f"{N1},", (N1, ""), id="trailing-comma"),
    ],
)
def test_split_addresses(text: str, expected: tuple[str, ...]) -> None:
    """Elements are trimmed and lose a trailing slash; empty ones stay so that validation can name them."""
    assert split_addresses(text) == expected


@pytest.mark.parametrize(
    ("flags", "env", "spc", "address", "source"),
    [
        pytest.param([f"-vault-addr={N1}, {N2}/,{N3}"], {}, {}, f"{N1},{N2},{N3}", "flag", id="flag"),
        pytest.param([], {"VAULT_ADDR": f"{N2},{N1}"}, {}, f"{N2},{N1}", "env", id="env-order-kept"),
        pytest.param([f"-vault-addr={N1}"], {}, {"address": f"{N3}, {N2}"}, f"{N3},{N2}", "spc", id="spc"),
        pytest.param([f"-vault-addr={N1}/"], {}, {}, N1, "flag", id="one-address-as-before"),
    ],
)
def test_lists_resolve_in_order(
    flags: list[str], env: dict[str, str], spc: dict[str, Any], address: str, source: str
) -> None:
    """The target carries the nodes in the order given; `address` is the normalised list."""
    target = resolve(flags, env, **spc)
    assert (target.address, target.address_source) == (address, source)
    assert target.addresses == tuple(address.split(","))


def test_identity_is_the_normalised_list() -> None:
    """Spelling differences do not make another Vault; order and membership do."""
    first = resolve([f"-vault-addr={N1},{N2}"])
    assert resolve([f"-vault-addr= {N1}/ ,{N2}/"]) == first
    assert resolve([f"-vault-addr={N2},{N1}"]).address != first.address
    assert resolve([f"-vault-addr={N1}"]).address != first.address


def test_node_narrows_to_one_address() -> None:
    """node() keeps namespace, TLS and origin, so a message about one node reads like a single address."""
    target = resolve([f"-vault-addr={N1},{N2}", "-vault-namespace=team"])
    node = target.node(N2)
    assert (node.address, node.addresses, node.namespace, node.tls) == (N2, (N2,), "team", target.tls)
    assert node.describe() == f"{N2} (from the -vault-addr flag)"


@pytest.mark.parametrize(
    ("spc_address", "problems"),
    [
        pytest.param(
            f"{N1},,{N2}",
            ["vaultAddress in the SecretProviderClass has an empty address (element 2 of 3)"],
            id="empty-element",
        ),
        pytest.param(
            f"{N1},ftp://v2,{N3}",
            [
                "Vault address ftp://v2 (from vaultAddress in the SecretProviderClass) "
                "must start with https://, http:// or unix://"
            ],
            id="bad-scheme-named",
        ),
        pytest.param(
            f"{N1},{N2}/,{N1}",
            [f"vaultAddress in the SecretProviderClass lists {N1} more than once"],
            id="duplicate",
        ),
        pytest.param(
            "https://v1:port,v2:8200",
            [
                "Vault address https://v1:port (from vaultAddress in the SecretProviderClass) "
                "is not a valid URL",
                "Vault address v2:8200 (from vaultAddress in the SecretProviderClass) "
                "must start with https://, http:// or unix://",
            ],
            id="every-bad-element-at-once",
        ),
    ],
)
def test_bad_elements(spc_address: str, problems: list[str]) -> None:
    """Each bad element is its own problem, naming the element and the parameter."""
    assert refusal([], address=spc_address) == problems


def test_flag_with_an_empty_element_is_refused_at_start() -> None:
    """An operator's typo stops the process at start, without echoing the value."""
    with pytest.raises(FlagError) as caught:
        parse_settings([f"-vault-addr=https://u:{PLANTED_PASSWORD}@v1:8200,,{N2}"], {})
    assert (
        str(caught.value)
        == "-vault-addr (or VAULT_ADDR) has an empty element; separate addresses by one comma"
    )


def test_every_spc_element_must_be_allowed() -> None:
    """With -allowed-vault-addresses, each element off the list is one problem; listed ones pass."""
    flags = [f"-allowed-vault-addresses={N1},{N2}"]
    assert resolve(flags, address=f"{N2},{N1}").addresses == (N2, N1)
    assert refusal(flags, address=f"{N1},https://evil:8200,{N3}") == [
        f"vaultAddress {address} is not one of the Vault addresses this provider allows "
        f"(-allowed-vault-addresses: {N1}, {N2})"
        for address in ("https://evil:8200", N3)
    ]


def test_operator_nodes_are_allowed_to_an_spc() -> None:
    """An SPC may name any node of the operator's own -vault-addr list without it being allowlisted."""
    flags = [f"-vault-addr={N1},{N2}", "-allowed-vault-addresses=https://other:8200"]
    assert resolve(flags, address=N2).address == N2


def test_allowed_addresses_travel_for_redirects() -> None:
    """The target carries -allowed-vault-addresses: the only other places a redirect may lead."""
    assert resolve([f"-allowed-vault-addresses={N3}/"]).redirect_allowed == (N3,)


def test_userinfo_never_shown_for_any_element() -> None:
    """user:password in any element of a list is redacted from descriptions and refusals."""
    listed = f"https://u:{PLANTED_PASSWORD}@v1:8200,https://w:{PLANTED_PASSWORD}@v2:8200"
    assert without_userinfo(listed) == "https://[redacted]@v1:8200,https://[redacted]@v2:8200"
    problems = refusal([f"-allowed-vault-addresses={N3}"], address=listed)
    assert len(problems) == 2
    assert all(PLANTED_PASSWORD not in problem for problem in problems)


def test_an_spc_address_with_userinfo_is_refused_without_showing_it() -> None:
    """user:password@ in a vaultAddress (plain text in etcd) is refused; in -vault-addr it is left alone."""
    listed = f"{N1},https://u:{PLANTED_PASSWORD}@v2:8200"
    assert refusal([], address=listed) == [
        "vaultAddress https://[redacted]@v2:8200 (from vaultAddress in the SecretProviderClass) carries a "
        "user name or password; remove the user:password@ part (Vault authenticates the pod by its "
        "service-account token)"
    ]
    operator = f"https://u:{PLANTED_PASSWORD}@v2:8200"
    assert resolve([f"-vault-addr={operator}"]).address == operator
