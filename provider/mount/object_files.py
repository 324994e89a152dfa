"""The files an object writes, from the answers to its requests (pure).

One key, the response envelope, the data as JSON, every key as a file (`format`), or
a template rendered over several answers; `extract` holds the byte-level rules. Errors
name the object and never quote a value.
"""

from __future__ import annotations

from typing import Any

from provider.errors import InvalidRequest, ProviderError, redact
from provider.render import gojson
from provider.render.extract import (
    ExtractError,
    decode,
    envelope,
    require_data,
    secret_data,
    select_key,
    value_bytes,
)
from provider.render.file_paths import path_problem
from provider.request.objects import SecretObject, VaultRequest
from provider.request.template_plan import ObjectTemplate, render_template

__all__ = ["object_files"]


def object_files(
    obj: SecretObject, payloads: dict[VaultRequest, Any], sensitive: list[str], max_file_bytes: int
) -> list[tuple[str, bytes]]:
    """The (path, contents) an object writes from the answers to its requests (parsed payloads).

    One file; with format: files one per key; for a template the rendered file.
    """
    if obj.template is not None:
        return [(obj.name, _render(obj, obj.template, payloads, sensitive, max_file_bytes))]
    return _files(obj, payloads[obj.request], sensitive)


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
        never_show = sensitive + answers
        raise type(exc)(f"{obj.label()}: {redact(str(exc), never_show)}") from None


def _files(obj: SecretObject, payload: Any, sensitive: list[str]) -> list[tuple[str, bytes]]:
    """The (path, contents) of an object without a template."""
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
        if key is None:
            return [(obj.name, envelope(payload))]
        return [(obj.name, decode(select_key(data, key), obj.encoding))]
    except ExtractError as exc:
        raise InvalidRequest(f'{what}: the value of key "{key}" {exc}') from None
    except InvalidRequest:
        raise
    except ProviderError as exc:
        raise type(exc)(f"{what}: {redact(str(exc), sensitive)}") from None
