"""provider.serve.http2 and http2_frames: the server side of HTTP/2, fed frames built here byte by byte.

Header blocks are coded with `hpack`, as a client's would be; everything else is packed
by hand from RFC 9113's layouts, so the parser is checked against the RFC and not
against itself. grpcio's and grpc-go's clients drive the same code through a socket in
tests/inprocess/test_rpc_server.py and the e2e suite.
"""

from __future__ import annotations

import struct

import hpack
import pytest

from provider.serve.http2 import ServerProtocol
from provider.serve.http2_frames import PREFACE, Data, Headers, ProtocolError, Reset, WindowOpened

REQUEST = [(b":method", b"POST"), (b":path", b"/v1alpha1.CSIDriverProvider/Mount"), (b"te", b"trailers")]


def raw(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">L", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">L", stream_id) + payload


def settings(*pairs: tuple[int, int], ack: bool = False) -> bytes:
    return raw(4, 1 if ack else 0, 0, b"".join(struct.pack(">HL", *pair) for pair in pairs))


def headers(
    stream_id: int, fields: list[tuple[bytes, bytes]], flags: int = 0x4, coder: hpack.Encoder | None = None
) -> bytes:
    return raw(1, flags, stream_id, (coder or hpack.Encoder()).encode(fields))


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream, payload) of each frame in `data`."""
    out = []
    while data:
        size = int.from_bytes(data[:3], "big")
        stream = struct.unpack(">L", data[5:9])[0]
        out.append((data[3], data[4], stream, data[9 : 9 + size]))
        data = data[9 + size :]
    return out


def started(max_streams: int = 8) -> ServerProtocol:
    protocol = ServerProtocol(max_streams, 1024 * 1024)
    protocol.start()
    protocol.data_to_send()
    return protocol


def test_start_announces_settings_and_a_wider_connection_window() -> None:
    protocol = ServerProtocol(256, 1024 * 1024)
    protocol.start()
    assert frames(protocol.data_to_send()) == [
        (4, 0, 0, struct.pack(">HLHL", 0x3, 256, 0x6, 64 * 1024)),
        (8, 0, 0, struct.pack(">L", 1024 * 1024 - 65535)),
    ]


def test_a_unary_request_arriving_a_byte_at_a_time() -> None:
    """Preface, SETTINGS (acknowledged), HEADERS, DATA with END_STREAM: the events of one request."""
    protocol = started()
    wire = (
        PREFACE + settings((0x4, 1 << 20)) + headers(1, REQUEST) + raw(0, 0x1, 1, b"\x00\x00\x00\x00\x02hi")
    )
    events = [event for byte in range(len(wire)) for event in protocol.receive(wire[byte : byte + 1])]
    assert events == [
        WindowOpened(),
        Headers(1, dict(REQUEST), ended=False),
        Data(1, b"\x00\x00\x00\x00\x02hi", ended=True),
    ]
    assert frames(protocol.data_to_send()) == [
        (4, 1, 0, b"")
    ]  # the SETTINGS ack; no window for an ended stream
    assert protocol.highest_inbound_stream_id == 1


def test_padding_and_priority_are_stripped() -> None:
    protocol = started()
    block = hpack.Encoder().encode(REQUEST)
    padded = bytes([3]) + struct.pack(">LB", 0, 15) + block + b"\x00" * 3
    data = bytes([2]) + b"ab" + b"\x00\x00"
    events = protocol.receive(PREFACE + raw(1, 0x4 | 0x8 | 0x20, 1, padded) + raw(0, 0x1 | 0x8, 1, data))
    assert events == [Headers(1, dict(REQUEST), ended=False), Data(1, b"ab", ended=True)]


def test_a_header_block_in_continuation_frames() -> None:
    protocol = started()
    block = hpack.Encoder().encode(REQUEST)
    wire = PREFACE + raw(1, 0x1, 3, block[:5]) + raw(9, 0, 3, block[5:9]) + raw(9, 0x4, 3, block[9:])
    assert protocol.receive(wire) == [Headers(3, dict(REQUEST), ended=True)]


def test_ping_is_answered_and_data_tops_up_the_windows() -> None:
    protocol = started()
    protocol.receive(PREFACE + headers(1, REQUEST) + raw(6, 0, 0, b"12345678") + raw(0, 0, 1, b"x" * 100))
    assert frames(protocol.data_to_send()) == [(6, 1, 0, b"12345678"), (8, 0, 1, struct.pack(">L", 100))]


@pytest.mark.parametrize(
    ("wire", "code", "message"),
    [
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", 0x1, "not the HTTP/2 client preface", id="http1"),
        pytest.param(
            PREFACE + raw(0, 0, 1, b"x" * 16385),
            0x6,
            "a frame larger than SETTINGS_MAX_FRAME_SIZE",
            id="frame-size",
        ),
        pytest.param(
            PREFACE + headers(2, REQUEST), 0x1, "a client stream with an even identifier", id="even-stream"
        ),
        pytest.param(
            PREFACE + headers(1, REQUEST, flags=0) + raw(6, 0, 0, b"12345678"),
            0x1,
            "a header block was interrupted",
            id="interrupted-block",
        ),
        pytest.param(
            PREFACE + raw(1, 0x4, 1, b"\xff\xff\xff\xff"),
            0x9,
            "a header block that does not decode: a header block that ends inside an integer",
            id="bad-hpack",
        ),
        pytest.param(
            PREFACE + raw(5, 0x4, 1, b"\x00\x00\x00\x02"), 0x1, "a client may not push", id="push-promise"
        ),
        pytest.param(
            PREFACE + raw(4, 0, 0, b"\x00\x04\x00"),
            0x6,
            "a SETTINGS payload that is not whole settings",
            id="settings-size",
        ),
        pytest.param(
            PREFACE + settings((0x4, 2**31)), 0x3, "an initial window over 2^31-1", id="window-too-large"
        ),
        pytest.param(
            PREFACE + raw(8, 0, 0, b"\x00\x00\x00\x00"),
            0x1,
            "a connection WINDOW_UPDATE of 0",
            id="zero-window-update",
        ),
        pytest.param(
            PREFACE + raw(0, 0x8, 1, b"\x05ab"), 0x1, "padding longer than the frame", id="bad-padding"
        ),
    ],
)
def test_what_a_client_must_not_send_ends_the_connection(wire: bytes, code: int, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        started().receive(wire)
    assert (caught.value.code, str(caught.value)) == (code, message)


def test_streams_over_the_limit_are_refused_and_a_reset_is_reported() -> None:
    protocol = started(max_streams=1)
    coder = hpack.Encoder()
    events = protocol.receive(PREFACE + headers(1, REQUEST, coder=coder) + headers(3, REQUEST, coder=coder))
    assert events == [Headers(1, dict(REQUEST), ended=False)]
    assert frames(protocol.data_to_send()) == [(3, 0, 3, struct.pack(">L", 0x7))]
    assert protocol.receive(raw(3, 0, 1, struct.pack(">L", 0x8))) == [Reset(1)]
    assert protocol.send_window(1) == 0


def test_answers_respect_the_windows_the_client_grants() -> None:
    """Send windows start at the client's INITIAL_WINDOW_SIZE, follow its changes and WINDOW_UPDATEs."""
    protocol = started()
    protocol.receive(PREFACE + settings((0x4, 10)) + headers(1, REQUEST))
    assert protocol.send_window(1) == 10
    protocol.send_data(1, b"x" * 10)
    assert protocol.send_window(1) == 0
    assert protocol.receive(raw(8, 0, 1, struct.pack(">L", 5))) == [WindowOpened()]
    assert protocol.send_window(1) == 5
    assert protocol.receive(settings((0x4, 20))) == [WindowOpened()]
    assert protocol.send_window(1) == 15  # the change applies to open streams too


def test_a_header_block_larger_than_a_frame_goes_in_continuations() -> None:
    protocol = started()
    protocol.receive(PREFACE + headers(1, REQUEST))
    protocol.data_to_send()
    trailers = [(b"grpc-status", b"13"), (b"grpc-message", b"x" * 20000)]
    protocol.send_headers(1, trailers, end_stream=True)
    sent = frames(protocol.data_to_send())
    assert [(kind, flags) for kind, flags, _, _ in sent] == [(1, 0x1), (9, 0x4)]
    assert hpack.Decoder().decode(b"".join(payload for _, _, _, payload in sent), raw=True) == trailers
    assert protocol.send_window(1) == 0  # answered: the stream is gone
