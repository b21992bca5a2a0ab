"""RowGroupStream's reads (issue 27): the training thread reads the groups a gather needs that the reading
thread has not started, rather than idle, and a group pushed out of the pool before its read starts is
never read."""

import threading

import pytest
import torch

from linreg.row_group_pool import RowGroupStream
from tests.test_file_stream import module
from tests.test_parquet_parts import write_parts

pytestmark = pytest.mark.usefixtures("cache")  # tests/conftest.py: a cache folder of each test's own


def blocked_stream(dm, calls: list, release_after: int) -> tuple[RowGroupStream, threading.Event, threading.Event]:
    """A stream whose reading thread, once it has started group 0 (`started`), is held there until the
    training thread has read `release_after` groups itself (or `release` is set); every read is recorded
    as (group, inline)."""
    stream = RowGroupStream(dm.parts, dm.columns, dm.mean, dm.std, "cpu", torch.float32, 4)
    started, release, read = threading.Event(), threading.Event(), stream.read

    def recorded(g, slot, inline=False):
        calls.append((g, inline))
        if g == 0 and not inline:
            started.set()
            assert release.wait(10), "the reading thread was never released"
        read(g, slot, inline)
        if sum(inline for _, inline in calls) == release_after:
            release.set()

    stream.read = recorded
    return stream, started, release


def test_a_gather_reads_the_groups_the_reading_thread_has_not_started_and_gets_the_same_rows(tmp_path):
    # catches: a gather that waits in line for the one reading thread, a stolen read put into the wrong
    # slot or read twice, the count of queued reads left off (Arrow's pool would never be emptied)
    write_parts(tmp_path / "data", sizes=(1600, 800, 400), row_group_size=400)  # 7 groups of 400 rows
    dm = module(tmp_path / "data")
    calls = []
    stream, started, _ = blocked_stream(dm, calls, release_after=3)
    stream.prefetch([0, 1, 2, 3])  # the reading thread starts group 0 and is held there
    assert started.wait(10)
    rows = torch.tensor([5, 405, 805, 1205, 399, 1599])  # from groups 0, 1, 2, 3
    X, y = stream[rows]
    assert calls[0] == (0, False) and sorted(calls[1:]) == [(1, True), (2, True), (3, True)]
    assert calls[1:] == [
        (3, True),
        (2, True),
        (1, True),
    ]  # from the last back, while the reading thread is at the first
    plain = RowGroupStream(dm.parts, dm.columns, dm.mean, dm.std, "cpu", torch.float32, 4)
    expected = plain[rows]
    assert torch.equal(X, expected[0]) and torch.equal(y, expected[1])
    assert stream.queued == 0 and not stream.making
    stream.executor.shutdown()
    plain.executor.shutdown()


def test_a_group_pushed_out_of_the_pool_before_its_read_starts_is_never_read(tmp_path):
    write_parts(tmp_path / "data", sizes=(1600, 800, 400), row_group_size=400)
    dm = module(tmp_path / "data")
    calls = []
    stream, started, release = blocked_stream(dm, calls, release_after=-1)
    stream.prefetch([0, 1, 2, 3])  # 0 is being read (held), 1, 2, 3 wait in line
    assert started.wait(10)
    stream.prefetch([0, 4])  # 0 stays; 4 takes the oldest slot, 1's, whose read has not started
    release.set()
    stream[torch.tensor([0, 1600, 800, 1200])]  # groups 0, 4, 2, 3: all read by now
    stream.executor.shutdown()
    assert sorted(g for g, _ in calls) == [0, 2, 3, 4] and stream.queued == 0  # 1: never
