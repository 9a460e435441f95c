"""The frame codec: round trips, split delivery, and every way a hostile peer can break it."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster.frames import (
    HEADER_SIZE,
    MAX_FRAME,
    FrameDecoder,
    FrameError,
    encode_frame,
)

frame_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text() | st.binary(), children, max_size=5)
    ),
    max_leaves=20,
)


@given(st.lists(frame_values, max_size=5), st.data())
def test_round_trip_whatever_the_split(values: list[object], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(value) for value in values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = FrameDecoder()
    decoded: list[object] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        decoded += decoder.feed(stream[start:end])
    assert decoded == values
    assert decoder.buffered == 0


def test_byte_at_a_time() -> None:
    stream = encode_frame({"method": "ping", "id": 7}) + encode_frame([b"\x00" * 300])
    decoder = FrameDecoder()
    decoded = [obj for i in range(len(stream)) for obj in decoder.feed(stream[i : i + 1])]
    assert decoded == [{"method": "ping", "id": 7}, [b"\x00" * 300]]


def test_header_is_u32_big_endian_length() -> None:
    frame = encode_frame("hi")
    assert frame[:HEADER_SIZE] == struct.pack(">I", len(frame) - HEADER_SIZE)
    assert msgpack.unpackb(frame[HEADER_SIZE:]) == "hi"


def test_tuples_come_back_as_lists_and_bytes_stay_bytes() -> None:
    (decoded,) = FrameDecoder().feed(encode_frame({"t": (1, 2), "b": b"x", "s": "x"}))
    assert decoded == {"t": [1, 2], "b": b"x", "s": "x"}


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, object(), {1, 2}])
def test_unencodable_values_raise_frame_error(value: object) -> None:
    with pytest.raises(FrameError):
        encode_frame(value)


def test_encoder_refuses_a_body_over_max_frame() -> None:
    encode_frame(b"x" * 90, max_frame=100)
    with pytest.raises(FrameError, match="exceeds max_frame"):
        encode_frame(b"x" * 100, max_frame=100)


def test_oversized_length_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(FrameError, match="outside"):
        decoder.feed(struct.pack(">I", 1025))  # no body bytes sent: nothing is buffered first
    assert decoder.buffered == 0


def test_default_bound_is_8_mib() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(struct.pack(">I", MAX_FRAME + 1))


def test_zero_length_frame_is_garbage() -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">I", 0))


def _framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # reserved type byte
        b"\x01\x02",  # two objects in one frame
        b"\x93\x01",  # an array announcing more elements than the frame holds
        b"\xa2\xff\xfe",  # str that is not UTF-8
        b"\x81\x01\x02",  # integer map key (strict_map_key)
        b"\x91" * 5000 + b"\x00",  # nesting deeper than msgpack's stack
        msgpack.packb(msgpack.ExtType(5, b"ab")),  # extension types are not part of the protocol
        msgpack.packb(msgpack.Timestamp(1, 0)),
    ],
)
def test_undecodable_bodies_raise_frame_error(body: bytes) -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(_framed(body))


def test_frames_before_the_bad_one_are_lost_and_the_decoder_stays_failed() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(encode_frame("fine") + _framed(b"\xc1"))
    with pytest.raises(FrameError):
        decoder.feed(encode_frame("after"))


def test_max_frame_must_fit_the_prefix() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame=2**32)
