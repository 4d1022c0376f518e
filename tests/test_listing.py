"""Page sizes by bytes: how many rows a listing's next page asks for (the listings themselves are tested
against both servers in tests/contract)."""

from __future__ import annotations

import json

import pytest

from backfill_sync.listing import MAX_PAGE_ROWS, PAGE_BYTES, PageSize


def rows_of(size: int, count: int = 10) -> list[dict[str, str]]:
    """`count` rows whose JSON takes about `size` bytes each."""
    blank = len(json.dumps({"v": ""}, separators=(",", ":"))) + 1
    return [{"v": "x" * (size - blank)} for _ in range(count)]


def test_the_first_page_follows_the_guess_then_the_rows_seen():
    size = PageSize(guess=1024)
    assert size.rows() == PAGE_BYTES // 1024
    size.weigh(rows_of(500))
    assert size.rows() == pytest.approx(PAGE_BYTES / 500, rel=0.01)


def test_heavier_rows_later_make_pages_smaller_and_lighter_ones_do_not_grow_them():
    size = PageSize(guess=1024)
    size.weigh(rows_of(500))
    size.weigh(rows_of(4000))
    heavy = size.rows()
    assert heavy == pytest.approx(PAGE_BYTES / 4000, rel=0.01)
    size.weigh(rows_of(100))
    assert size.rows() == heavy


@pytest.mark.parametrize(("row", "rows"), [(1, MAX_PAGE_ROWS), (PAGE_BYTES * 4, 1)])
def test_pages_hold_at_least_one_row_and_at_most_the_cap(row: int, rows: int):
    size = PageSize(guess=row)
    assert size.rows() == rows


def test_a_fixed_size_is_kept_and_never_below_one():
    size = PageSize(guess=1024, fixed=5)
    size.weigh(rows_of(100_000, count=2))
    assert size.rows() == 5
    with pytest.raises(ValueError, match="_limit"):
        PageSize(guess=1024, fixed=0)


def test_an_empty_page_teaches_nothing():
    size = PageSize(guess=2048)
    size.weigh([])
    assert size.rows() == PAGE_BYTES // 2048
