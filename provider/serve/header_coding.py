"""HPACK (RFC 7541) for a server's header blocks: a decoder with its dynamic table, and a stateless encoder.

Why our own: hpack's `Decoder` and `Encoder` were a third of the HTTP/2 layer's CPU on
a warm poll (a debug log call per integer, a tuple object per field). Decoding here is
one loop over the block; python-hyper's hpack still provides the two tables of facts,
RFC 7541's static table and its Huffman code (`decode_huffman`).

We encode without ever indexing (literal field, static name where there is one), so
our dynamic table for the peer stays empty and a block depends on nothing before it:
the few fields a gRPC server sends (`:status`, `content-type`, `grpc-status`,
`grpc-message`) gain little from indexing and the encoder holds no state to get wrong.
"""

from __future__ import annotations

from collections import deque

from hpack.exceptions import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

__all__ = ["HeaderDecoder", "HeaderError", "encode_block"]

_STATIC: tuple[tuple[bytes, bytes], ...] = tuple(HeaderTable.STATIC_TABLE)
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _) in reversed(list(enumerate(_STATIC, start=1))):
    _STATIC_NAMES[_name] = _index  # the lowest index of each name
# An entry's size counts 32 octets beyond its name and value (RFC 7541 §4.1).
_ENTRY_OVERHEAD = 32
DEFAULT_TABLE_SIZE = 4096


class HeaderError(ValueError):
    """A header block that does not decode; the message never quotes the block."""


class HeaderDecoder:
    """One connection's decoding state: the peer's dynamic table. Not thread-safe."""

    def __init__(self, max_list_size: int, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self._max_list_size = max_list_size
        # The most the peer may size its table to: what our SETTINGS allow (the default).
        self._allowed_table_size = max_table_size
        self._table_size_limit = max_table_size
        self._table: deque[tuple[bytes, bytes]] = deque()  # newest first
        self._table_size = 0

    def decode(self, block: bytes | bytearray) -> list[tuple[bytes, bytes]]:
        """The fields of one complete header block, in order; raises HeaderError."""
        fields: list[tuple[bytes, bytes]] = []
        list_size = 0
        position, end = 0, len(block)
        while position < end:
            first = block[position]
            if first & 0x80:  # indexed field (§6.1)
                index, position = _integer(block, position, 7)
                field = self._entry(index)
            elif first & 0x40:  # literal, added to the table (§6.2.1)
                field, position = self._literal(block, position, 6)
                self._add(field)
            elif first & 0x20:  # table size update (§6.3): only before the first field
                if fields:
                    raise HeaderError("a dynamic table size update after a header field")
                size, position = _integer(block, position, 5)
                if size > self._allowed_table_size:
                    raise HeaderError("a dynamic table size over the one allowed")
                self._table_size_limit = size
                self._evict(0)
                continue
            else:  # literal without indexing, or never indexed (§6.2.2, §6.2.3)
                field, position = self._literal(block, position, 4)
            list_size += len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
            if list_size > self._max_list_size:
                raise HeaderError("a header list over MAX_HEADER_LIST_SIZE")
            fields.append(field)
        return fields

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= len(_STATIC):
            return _STATIC[index - 1]
        dynamic = index - len(_STATIC) - 1
        if 0 <= dynamic < len(self._table):
            return self._table[dynamic]
        raise HeaderError("a header index outside both tables")

    def _literal(
        self, block: bytes | bytearray, position: int, prefix: int
    ) -> tuple[tuple[bytes, bytes], int]:
        name_index, position = _integer(block, position, prefix)
        if name_index:
            name = self._entry(name_index)[0]
        else:
            name, position = _string(block, position)
        value, position = _string(block, position)
        return (name, value), position

    def _add(self, field: tuple[bytes, bytes]) -> None:
        size = len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
        if size > self._table_size_limit:
            # Too big for the table: it empties it (§4.4).
            self._table.clear()
            self._table_size = 0
            return
        self._evict(size)
        self._table.appendleft(field)
        self._table_size += size

    def _evict(self, room: int) -> None:
        table = self._table
        while table and self._table_size + room > self._table_size_limit:
            name, value = table.pop()
            self._table_size -= len(name) + len(value) + _ENTRY_OVERHEAD


def _integer(block: bytes | bytearray, position: int, prefix: int) -> tuple[int, int]:
    """An integer with an N-bit prefix (§5.1) at `position`, and the position after it."""
    mask = (1 << prefix) - 1
    try:
        value = block[position] & mask
        position += 1
        if value < mask:
            return value, position
        shift = 0
        while True:
            octet = block[position]
            position += 1
            value += (octet & 0x7F) << shift
            if not octet & 0x80:
                return value, position
            shift += 7
            if shift > 28:
                raise HeaderError("a header integer over 2^28")
    except IndexError:
        raise HeaderError("a header block that ends inside an integer") from None


def _string(block: bytes | bytearray, position: int) -> tuple[bytes, int]:
    """A string literal (§5.2), Huffman-coded or not, and the position after it."""
    if position >= len(block):
        raise HeaderError("a header block that ends before a string")
    huffman = block[position] & 0x80
    length, position = _integer(block, position, 7)
    end = position + length
    if end > len(block):
        raise HeaderError("a header string longer than its block")
    raw = bytes(block[position:end])
    if not huffman:
        return raw, end
    try:
        return decode_huffman(raw), end
    except HPACKDecodingError:  # not its words: they are not ours to pass on
        raise HeaderError("a header string whose Huffman code does not decode") from None


def encode_block(fields: list[tuple[bytes, bytes]]) -> bytes:
    """A header block of literal fields the peer does not index (§6.2.2), static names by index."""
    out = bytearray()
    for name, value in fields:
        index = _STATIC_NAMES.get(name)
        if index is None:
            out.append(0)
            out += _encoded_integer(len(name), 7)
            out += name
        else:
            out += _encoded_integer(index, 4)
        out += _encoded_integer(len(value), 7)
        out += value
    return bytes(out)


def _encoded_integer(value: int, prefix: int) -> bytes:
    """`value` with an N-bit prefix (§5.1); the caller ors in the representation's leading bits."""
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes((value,))
    out = bytearray((mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
