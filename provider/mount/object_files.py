"""The files an object writes, from the answers to its requests; and what its version covers. Pure.

One key, the response envelope, the data as JSON, every key as a file (`format`), or
a template rendered over several answers; `render.extract` holds the byte-level rules
and `render.templates` the engine. Errors name the object and never quote a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provider.errors import InvalidRequest, ProviderError, SecretNotFound, VaultUnavailable, redact
from provider.render import gojson, templates
from provider.render.extract import (
    ExtractError,
    decode,
    envelope,
    require_data,
    secret_data,
    select_key,
    select_pointer,
    value_bytes,
)
from provider.render.file_paths import path_problem
from provider.render.templates.reads import SecretCall
from provider.request.objects import SecretObject
from provider.request.template_plan import ObjectTemplate
from provider.request.vault_request import VaultRequest

__all__ = ["object_files", "reads_whole_answer", "render_template", "versioned_content"]

# The evaluator's words for a key missing from a map: that is a secret without the key.
_MISSING_KEY = "map has no entry for key"


def object_files(
    obj: SecretObject, payloads: dict[VaultRequest, Any], sensitive: list[str], max_file_bytes: int
) -> list[tuple[str, bytes]]:
    """The (path, contents) an object writes from the answers to its requests (parsed payloads).

    One file; with format: files one per key; for a template the rendered file.
    """
    if obj.template is not None:
        return [(obj.name, _render(obj, obj.template, payloads, sensitive, max_file_bytes))]
    return _files(obj, payloads[obj.request], sensitive)


def reads_whole_answer(obj: SecretObject) -> bool:
    """Whether the files depend on more of an answer than its data: a template, or the envelope
    (`_files` writes it when no key, pointer or format is set)."""
    return obj.template is not None or (obj.secret_key is None and obj.key_pointer is None and not obj.format)


def versioned_content(obj: SecretObject, written: list[tuple[str, bytes]]) -> bytes:
    """What an object's version covers: its file, or with format: files every path and content."""
    if obj.format != "files":
        return written[0][1]
    return b"".join(gojson.dumps(path).encode() + b"\0" + data + b"\0" for path, data in written)


def render_template(
    name: str,
    template: ObjectTemplate,
    payloads: Mapping[VaultRequest, Any],
    max_output: int,
) -> bytes:
    """The file's bytes: the template run over the answers to its requests.

    Raises SecretNotFound for a key the secret lacks, InvalidRequest for any other
    template error, each message naming the line and column.
    """
    requests = dict(template.calls)

    def fetch(read: SecretCall) -> dict[str, Any]:
        request = requests[read]
        payload = payloads[request]
        if isinstance(payload, bytes):
            raise InvalidRequest(
                f"Vault answered {request.describe()} with a body that is not JSON (such as PEM), "
                "which a template cannot read; use an object without secretKey to write it whole"
            )
        if not isinstance(payload, dict):
            raise VaultUnavailable(f"Vault answered {request.describe()} with an empty body")
        return payload

    limits = templates.Limits(max_output=max_output)
    try:
        text = templates.execute(name, template.source, template.tree, None, fetch, limits)
    except templates.TemplateError as exc:
        kind: type[ProviderError] = SecretNotFound if exc.problem.startswith(_MISSING_KEY) else InvalidRequest
        raise kind(f"template line {exc.line}, column {exc.column}: {exc.problem}") from None
    # Binary values (base64Decode of a keystore) travel through the engine as surrogates.
    return text.encode("utf-8", "surrogateescape")


def _render(
    obj: SecretObject,
    template: ObjectTemplate,
    payloads: dict[VaultRequest, Any],
    sensitive: list[str],
    max_file_bytes: int,
) -> bytes:
    try:
        return decode(render_template(obj.name, template, payloads, max_file_bytes), obj.encoding)
    except ExtractError as exc:
        raise InvalidRequest(f"{obj.label()}: the rendered template {exc}") from None
    except ProviderError as exc:
        # The engine never quotes a value; the redaction is a second lock on the door.
        answers = [text for payload in payloads.values() for text in gojson.strings_in(payload)]
        raise exc.reworded(f"{obj.label()}: {redact(str(exc), sensitive + answers)}") from None


def _raw_file(obj: SecretObject, body: bytes) -> list[tuple[str, bytes]]:
    """A 2xx answer that is not JSON (pki/ca/pem): written as it came, by an object that asks for it whole."""
    asked = f'secretKey "{obj.secret_key}"' if obj.secret_key is not None else f"format: {obj.format}"
    if obj.secret_key is not None or obj.format in ("data", "files"):
        raise InvalidRequest(
            f"{obj.label()}: Vault answered {obj.request.describe()} with a body that is not JSON "
            f"(such as PEM), so {asked} cannot be taken from it; remove it to write the answer as it came"
        )
    return [(obj.name, body)]


def _files(obj: SecretObject, payload: Any, sensitive: list[str]) -> list[tuple[str, bytes]]:
    """The (path, contents) of an object without a template."""
    if isinstance(payload, bytes):
        return _raw_file(obj, payload)
    what = f"{obj.label()}: {obj.request.describe()}"
    key = obj.secret_key
    try:
        data = require_data(payload, obj.request.describe())
        if obj.format == "files":
            written = []
            for key, value in sorted(secret_data(data).items()):
                problem = path_problem(key) or ("is a nested path" if "/" in key else None)
                if problem is not None:
                    raise InvalidRequest(
                        f"{what}: a key of the secret {problem}, so it cannot be a file name"
                    )
                written.append((f"{obj.name}/{key}", decode(value_bytes(value), obj.encoding)))
            return written
        if obj.format == "data":
            return [(obj.name, gojson.dumps(secret_data(data)).encode())]
        if obj.key_pointer is not None:
            return [(obj.name, decode(select_pointer(data, obj.key_pointer), obj.encoding))]
        if key is None:
            return [(obj.name, envelope(payload))]
        return [(obj.name, decode(select_key(data, key), obj.encoding))]
    except ExtractError as exc:
        shown = key if obj.key_pointer is None else "/" + "/".join(obj.key_pointer)
        raise InvalidRequest(f'{what}: the value of key "{shown}" {exc}') from None
    except InvalidRequest:
        raise
    except ProviderError as exc:
        raise exc.reworded(f"{what}: {redact(str(exc), sensitive)}") from None
