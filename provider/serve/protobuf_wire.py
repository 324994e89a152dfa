"""Protocol Buffers' binary encoding, as far as the few messages the socket carries need it.

Why our own: the upb runtime with the service's descriptors held 3.2 MiB of every node's
idle RSS, for a handful of string fields. `proto/` and the generated `provider/v1alpha1`
stay the definition: the tests check `messages` against them, both ways.

From the encoding's specification: a message is a run of fields, each a varint key
(field number << 3 | wire type) and a value. Wire type 0 is a varint, 1 eight bytes,
2 a varint length and that many bytes, 5 four bytes; 3 and 4 open and close a group, a
deprecated form proto3 never writes. As every runtime does, fields arrive in any order,
unknown ones (groups too) are skipped and, of a singular field sent twice, the last wins.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = [
    "LENGTH_DELIMITED",
    "VARINT",
    "DecodeError",
    "as_int32",
    "bytes_field",
    "fields",
    "message_field",
    "string_field",
    "text",
    "varint_field",
]

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5

_UINT64 = (1 << 64) - 1
_MAX_VARINT_BYTES = 10
_MAX_FIELD_NUMBER = (1 << 29) - 1


class DecodeError(ValueError):
    """The bytes are not a well-formed message; the text says where, never what they hold."""


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each field as (number, wire type, value): an int for a varint, the bytes otherwise."""
    end = len(data)
    at = 0
    groups: list[int] = []  # the numbers of the groups being skipped, innermost last
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise DecodeError(f"field number {number} at byte {at} is out of range")
        value: int | bytes
        if wire == START_GROUP:
            groups.append(number)
            continue
        if wire == END_GROUP:
            if not groups or groups.pop() != number:
                raise DecodeError(f"group {number} ends where none of that number began")
            continue
        if wire == VARINT:
            value, at = _varint(data, at)
        elif wire == LENGTH_DELIMITED:
            length, at = _varint(data, at)
            if length > end - at:
                raise DecodeError(f"field {number} runs past the end of the message")
            value = data[at : at + length]
            at += length
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if width > end - at:
                raise DecodeError(f"field {number} runs past the end of the message")
            value = data[at : at + width]
            at += width
        else:
            raise DecodeError(f"field {number} has wire type {wire}, which no protobuf uses")
        if not groups:
            yield number, wire, value
    if groups:
        raise DecodeError(f"the message ends inside group {groups[-1]}")


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """The unsigned varint at `at` (kept to 64 bits), and where the next value starts."""
    try:
        byte = data[at]
        if byte < 0x80:  # the common case: a key, a short length
            return byte, at + 1
        value = byte & 0x7F
        shift = 7
        for index in range(at + 1, at + _MAX_VARINT_BYTES):
            byte = data[index]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value & _UINT64, index + 1
            shift += 7
    except IndexError:
        raise DecodeError("the message ends inside a varint") from None
    raise DecodeError(f"a varint at byte {at} is longer than {_MAX_VARINT_BYTES} bytes")


def text(value: bytes, number: int) -> str:
    """A string field's value: proto3 strings are UTF-8, and runtimes refuse anything else."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"field {number} is not valid UTF-8") from None


def as_int32(value: int) -> int:
    """An int32 or enum varint as the signed 32-bit number it carries (negatives are sign-extended)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _encode_varint(value: int) -> bytes:
    value &= _UINT64  # a negative int32 goes as its 64-bit two's complement, ten bytes
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def varint_field(number: int, value: int) -> bytes:
    """An int32, enum or bool field; nothing for 0, proto3's default."""
    return _key(number, VARINT) + _encode_varint(value) if value else b""


def bytes_field(number: int, value: bytes) -> bytes:
    """A bytes field; nothing when empty, proto3's default."""
    return _key(number, LENGTH_DELIMITED) + _encode_varint(len(value)) + value if value else b""


def string_field(number: int, value: str) -> bytes:
    """A string field, in UTF-8; nothing when empty, proto3's default."""
    return bytes_field(number, value.encode("utf-8"))


def message_field(number: int, encoded: bytes) -> bytes:
    """An embedded message, sent even when empty: one element of a repeated field, or a set field."""
    return _key(number, LENGTH_DELIMITED) + _encode_varint(len(encoded)) + encoded
