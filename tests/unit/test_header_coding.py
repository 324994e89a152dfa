"""provider.serve.header_coding: HPACK decoding against RFC 7541's own examples and hpack's encoder.

The examples of Appendix C are decoded in sequence on one decoder, so the dynamic table
(insertion, indexing and eviction) is checked against the RFC's; hpack's encoder, an
independent implementation, then codes random header lists with indexing and Huffman.
"""

from __future__ import annotations

import random

import hpack
import pytest

from provider.serve.header_coding import HeaderDecoder, HeaderError, encode_block

LIMIT = 64 * 1024

# RFC 7541 C.3 (requests, no Huffman) and C.4 (the same requests, Huffman-coded).
REQUESTS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")],
    [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
        (b"cache-control", b"no-cache"),
    ],
    [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/index.html"),
        (b":authority", b"www.example.com"),
        (b"custom-key", b"custom-value"),
    ],
]
C3 = [
    "828684410f7777772e6578616d706c652e636f6d",
    "828684be58086e6f2d6361636865",
    "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
]
C4 = [
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
]
# RFC 7541 C.5: responses with a 256-octet table, so the third evicts what the first added.
DATE_1, DATE_2 = b"Mon, 21 Oct 2013 20:13:21 GMT", b"Mon, 21 Oct 2013 20:13:22 GMT"
LOCATION = b"https://www.example.com"
COOKIE = b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
RESPONSES = [
    [(b":status", b"302"), (b"cache-control", b"private"), (b"date", DATE_1), (b"location", LOCATION)],
    [(b":status", b"307"), (b"cache-control", b"private"), (b"date", DATE_1), (b"location", LOCATION)],
    [
        (b":status", b"200"),
        (b"cache-control", b"private"),
        (b"date", DATE_2),
        (b"location", LOCATION),
        (b"content-encoding", b"gzip"),
        (b"set-cookie", COOKIE),
    ],
]
C5 = [
    "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54"
    "6e1768747470733a2f2f7777772e6578616d706c652e636f6d",
    "4803333037c1c0bf",
    "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f"
    "3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076"
    "657273696f6e3d31",
]


@pytest.mark.parametrize("blocks", [C3, C4], ids=["plain", "huffman"])
def test_the_rfc_request_examples_decode_in_sequence(blocks: list[str]) -> None:
    decoder = HeaderDecoder(LIMIT)
    assert [decoder.decode(bytes.fromhex(block)) for block in blocks] == REQUESTS


def test_the_rfc_response_examples_evict_the_oldest_entries() -> None:
    decoder = HeaderDecoder(LIMIT, max_table_size=256)
    reference = hpack.Decoder(max_header_list_size=LIMIT)
    reference.header_table_size = 256
    decoded = [decoder.decode(bytes.fromhex(block)) for block in C5]
    assert decoded == RESPONSES
    assert decoded == [reference.decode(bytes.fromhex(block), raw=True) for block in C5]


def test_what_hpack_encodes_with_indexing_and_huffman_decodes_the_same() -> None:
    randomness = random.Random(7)
    names = [b":path", b"content-type", b"grpc-timeout", b"user-agent", b"x-custom", b"te"]
    encoder = hpack.Encoder()
    decoder = HeaderDecoder(LIMIT)
    for round_number in range(300):
        if round_number in (100, 200):
            encoder.header_table_size = 256 if round_number == 100 else 4096  # a size update goes first
        fields = [
            (
                randomness.choice(names),
                bytes(randomness.choices(b"abcxyz0123/-.", k=randomness.randint(0, 90))),
            )
            for _ in range(randomness.randint(1, 8))
        ]
        assert decoder.decode(encoder.encode(fields, huffman=bool(round_number % 2))) == fields


def test_encoded_blocks_leave_the_peers_table_empty() -> None:
    fields = [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-message", b"x" * 200)]
    reference = hpack.Decoder()
    first, second = encode_block(fields), encode_block(fields)
    assert (reference.decode(first, raw=True), reference.decode(second, raw=True)) == (fields, fields)
    assert first == second
    assert len(reference.header_table.dynamic_entries) == 0


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param(b"\x80", "a header index outside both tables", id="index-0"),
        pytest.param(b"\xbe", "a header index outside both tables", id="empty-dynamic-table"),
        pytest.param(b"\xff\xff\xff\xff\xff\xff", "a header integer over 2^28", id="huge-integer"),
        pytest.param(b"\xff", "a header block that ends inside an integer", id="cut-integer"),
        pytest.param(b"\x40", "a header block that ends before a string", id="no-name"),
        pytest.param(b"\x40\x05ab", "a header string longer than its block", id="cut-string"),
        pytest.param(
            b"\x00\x01a\x81\x00", "a header string whose Huffman code does not decode", id="bad-huffman"
        ),
        pytest.param(b"\x82\x20", "a dynamic table size update after a header field", id="late-size-update"),
        pytest.param(b"\x3f\xe2\x1f", "a dynamic table size over the one allowed", id="table-too-big"),
    ],
)
def test_blocks_that_do_not_decode_are_refused_in_our_words(block: bytes, message: str) -> None:
    with pytest.raises(HeaderError) as caught:
        HeaderDecoder(LIMIT).decode(block)
    assert str(caught.value) == message


def test_a_header_list_over_the_limit_is_refused() -> None:
    block = encode_block([(b"x-big", b"v" * 100)])
    assert HeaderDecoder(200).decode(block) == [(b"x-big", b"v" * 100)]
    with pytest.raises(HeaderError) as caught:
        HeaderDecoder(100).decode(block)
    assert str(caught.value) == "a header list over MAX_HEADER_LIST_SIZE"


def test_a_size_update_to_zero_empties_the_table() -> None:
    decoder = HeaderDecoder(LIMIT)
    assert decoder.decode(bytes.fromhex(C3[0])) == REQUESTS[0]
    assert decoder.decode(b"\xbe") == [(b":authority", b"www.example.com")]
    with pytest.raises(HeaderError):
        decoder.decode(b"\x20\xbe")
