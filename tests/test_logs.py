"""The log writer: lines are batched off the caller's thread, none is lost, order is kept."""

from __future__ import annotations

import io

from zeronode.logs import get_logger, logging_to


def test_every_line_reaches_the_stream_in_order_by_the_end_of_the_block() -> None:
    stream = io.StringIO()
    with logging_to(stream):
        log = get_logger("zeronode.test")
        for n in range(500):
            log.info("thing.happened", n=n)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit("n=", 1)[1] for line in lines] == [str(n) for n in range(500)]


def test_a_broken_stream_does_not_stop_the_node() -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError()

    with logging_to(Broken()):
        get_logger("zeronode.test").info("thing.happened")  # neither raises nor hangs
