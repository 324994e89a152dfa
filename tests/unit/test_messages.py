"""The socket's messages (`serve.messages`) against the generated protobuf classes, both ways.

The generated modules are the definition of the wire format here: what they write we must
read alike, what we write they must read back, byte for byte where protobuf's encoding is
deterministic. Random bytes are refused by us exactly when they refuse them.
"""

from __future__ import annotations

import pytest
from fuzzing import FUZZ
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.wrappers_pb2 import UInt64Value
from grpc_health.v1 import health_pb2
from hypothesis import given
from hypothesis import strategies as st

from provider.serve import messages
from provider.serve.protobuf_wire import DecodeError
from provider.v1alpha1 import service_pb2

# Every code point a UTF-8 string can carry: surrogates have no UTF-8 form.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
versions = st.builds(service_pb2.ObjectVersion, id=texts, version=texts)
int32s = st.integers(-(2**31), 2**31 - 1)


def unknown_field(number: int) -> st.SearchStrategy[bytes]:
    """One field of a number the message does not have, in each wire type (and as a group)."""
    key = st.sampled_from([0, 1, 2, 5, 3]).map(lambda wire: number << 3 | wire)

    def body(wire_key: int) -> st.SearchStrategy[bytes]:
        head = varint(wire_key)
        wire = wire_key & 7
        if wire == 0:
            return st.integers(0, 2**64 - 1).map(lambda n: head + varint(n))
        if wire == 1:
            return st.binary(min_size=8, max_size=8).map(lambda b: head + b)
        if wire == 5:
            return st.binary(min_size=4, max_size=4).map(lambda b: head + b)
        if wire == 2:
            return st.binary(max_size=20).map(lambda b: head + varint(len(b)) + b)
        # A group holding one varint field, then its end.
        return st.integers(0, 300).map(lambda n: head + varint(1 << 3) + varint(n) + varint(number << 3 | 4))

    return key.flatmap(body)


def varint(value: int) -> bytes:
    """protobuf's own varint: a UInt64Value's one field, its key byte dropped."""
    return UInt64Value(value=value).SerializeToString()[1:] if value else b"\x00"


def mount_request_fields(request: messages.MountRequest | service_pb2.MountRequest) -> tuple[object, ...]:
    return (
        request.attributes,
        request.secrets,
        request.target_path,
        request.permission,
        [(v.id, v.version) for v in request.current_object_version],
    )


@FUZZ
@given(
    st.builds(
        service_pb2.MountRequest,
        attributes=texts,
        secrets=texts,
        target_path=texts,
        permission=texts,
        current_object_version=st.lists(versions, max_size=4),
    ),
    st.lists(unknown_field(6) | unknown_field(1000), max_size=3),
)
def test_a_mount_request_reads_as_protobuf_writes_it_unknown_fields_skipped(
    request: service_pb2.MountRequest, unknown: list[bytes]
) -> None:
    data = request.SerializeToString() + b"".join(unknown)
    # protobuf skips them too: they are well formed.
    assert mount_request_fields(service_pb2.MountRequest.FromString(data)) == mount_request_fields(request)
    assert mount_request_fields(messages.MountRequest.decode(data)) == mount_request_fields(request)


def test_a_field_sent_twice_keeps_its_last_value_and_repeated_ones_add_up() -> None:
    first = service_pb2.MountRequest(
        attributes="{}", permission="420", current_object_version=[service_pb2.ObjectVersion(id="a")]
    )
    second = service_pb2.MountRequest(
        attributes='{"a":"b"}', current_object_version=[service_pb2.ObjectVersion(id="b")]
    )
    data = first.SerializeToString() + second.SerializeToString()
    ours = messages.MountRequest.decode(data)
    assert mount_request_fields(ours) == mount_request_fields(service_pb2.MountRequest.FromString(data))
    assert ours.attributes == '{"a":"b"}'
    assert ours.permission == "420"
    assert [v.id for v in ours.current_object_version] == ["a", "b"]


def test_a_known_field_in_another_wire_type_is_skipped_as_protobuf_does() -> None:
    # attributes (1) as a varint, secrets (2) as fixed32: both unknown to a proto3 reader.
    data = varint(1 << 3 | 0) + varint(7) + varint(2 << 3 | 5) + b"abcd" + varint(3 << 3 | 2) + b"\x01/"
    theirs = service_pb2.MountRequest.FromString(data)
    assert mount_request_fields(messages.MountRequest.decode(data)) == mount_request_fields(theirs)
    assert (theirs.attributes, theirs.secrets, theirs.target_path) == ("", "", "/")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"\x0a\x05abc", "field 1 runs past the end of the message", id="short-string"),
        pytest.param(b"\x0a\x02\xff\xfe", "field 1 is not valid UTF-8", id="not-utf8"),
        pytest.param(b"\x0a\x03\xed\xa0\x80", "field 1 is not valid UTF-8", id="utf8-surrogate"),
        pytest.param(b"\x0a", "the message ends inside a varint", id="no-length"),
        pytest.param(b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes", id="long-varint"),
        pytest.param(b"\x02\x00", "field number 0", id="field-zero"),
        pytest.param(b"\x0e", "wire type 6", id="wire-type-6"),
        pytest.param(b"\x33\x08\x01", "ends inside group 6", id="open-group"),
        pytest.param(b"\x34", "group 6 ends where none of that number began", id="stray-group-end"),
        pytest.param(b"\x2a\x02\x0a\x05", "field 1 runs past the end", id="broken-object-version"),
    ],
)
def test_malformed_requests_are_refused_as_protobuf_refuses_them(data: bytes, problem: str) -> None:
    with pytest.raises(ProtobufDecodeError):
        service_pb2.MountRequest.FromString(data)
    with pytest.raises(DecodeError, match=problem):
        messages.MountRequest.decode(data)


# Near misses: fields of the message's own numbers (and a nested ObjectVersion's) in any wire
# type, with bodies that may be cut short, end early or not be UTF-8.
near_misses = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 7), st.binary(max_size=12)).map(
        lambda field: varint(field[0] << 3 | field[1]) + field[2]
    ),
    max_size=6,
).map(b"".join)


@FUZZ
@given(st.binary(max_size=64) | near_misses)
def test_any_bytes_are_refused_exactly_when_protobuf_refuses_them(data: bytes) -> None:
    try:
        theirs = service_pb2.MountRequest.FromString(data)
    except ProtobufDecodeError:
        with pytest.raises(DecodeError):
            messages.MountRequest.decode(data)
    else:
        assert mount_request_fields(messages.MountRequest.decode(data)) == mount_request_fields(theirs)


@FUZZ
@given(
    st.lists(st.tuples(texts, texts), max_size=5),
    st.lists(st.tuples(texts, int32s, st.binary(max_size=64)), max_size=5),
)
def test_a_mount_response_is_written_byte_for_byte_as_protobuf_writes_it(
    versions_: list[tuple[str, str]], files: list[tuple[str, int, bytes]]
) -> None:
    ours = messages.MountResponse(
        object_version=tuple(messages.ObjectVersion(i, v) for i, v in versions_),
        files=tuple(messages.File(p, m, c) for p, m, c in files),
    )
    theirs = service_pb2.MountResponse(
        object_version=[service_pb2.ObjectVersion(id=i, version=v) for i, v in versions_],
        files=[service_pb2.File(path=p, mode=m, contents=c) for p, m, c in files],
    )
    assert ours.encode() == theirs.SerializeToString(deterministic=True)
    assert ours.size == theirs.ByteSize()
    assert service_pb2.MountResponse.FromString(ours.encode()) == theirs


@FUZZ
@given(texts, texts, texts)
def test_version_messages_match_protobuf(version: str, name: str, runtime: str) -> None:
    request = service_pb2.VersionRequest(version=version).SerializeToString()
    assert messages.VersionRequest.decode(request).version == version
    answer = messages.VersionResponse(version, name, runtime).encode()
    assert answer == service_pb2.VersionResponse(
        version=version, runtime_name=name, runtime_version=runtime
    ).SerializeToString(deterministic=True)


@FUZZ
@given(texts, int32s)
def test_health_check_messages_match_protobuf_both_ways(service: str, status: int) -> None:
    request = messages.HealthCheckRequest(service)
    assert request.encode() == health_pb2.HealthCheckRequest(service=service).SerializeToString()
    assert messages.HealthCheckRequest.decode(request.encode()) == request
    answer = health_pb2.HealthCheckResponse(status=status).SerializeToString()  # unknown values included
    assert messages.HealthCheckResponse(status).encode() == answer
    assert messages.HealthCheckResponse.decode(answer).status == status


def test_health_status_names_are_the_standard_ones() -> None:
    standard = health_pb2.HealthCheckResponse.ServingStatus
    assert {value: standard.Name(value) for value in standard.values()} == messages.HEALTH_STATUS_NAMES
    assert standard.Value("SERVING") == messages.SERVING
    assert standard.Value("NOT_SERVING") == messages.NOT_SERVING
