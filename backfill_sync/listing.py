"""Mage's paged listings in few requests: pages sized by bytes, not rows; one pass, checked to add up.

Mage honours any `_limit` (mage-api.md §4.4), so how many rows a page holds is ours to choose: as many as
fit in PAGE_BYTES, judged from the rows the listing has brought so far (a backfill row is about 460
bytes, but its variables and settings can make it much larger). An answer so stays far below the cap
the transport puts on one answer, however large Mage is. Never a `_limit` <= 0: Mage answers it with
no rows and `next: true`, forever (§7). A listing is refused when a page is malformed, when it runs on
past the rows its first page announced, or past MAX_LISTING_ROWS.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from backfill_sync.errors import ApiError, MageError
from backfill_sync.models import JsonObject, LiveBackfill
from backfill_sync.transport import MageSession
from backfill_sync.wire import (
    WireError,
    backfill_from_wire,
    describe_value,
    listing_count,
    missing_pipeline,
    pipeline_uuid_from_wire,
)

T = TypeVar("T")

# The rows one listing may hold: a backfill's runs are bounded by --max-runs (10 000 by default) times
# its restarts, and no Mage holds anywhere near this many backfills or pipelines; 200 000 rows of
# backfills still parse into about half a gigabyte.
MAX_LISTING_ROWS = 200_000
# Pages beyond what the first page's `metadata.count` needs, for rows added while listing.
EXTRA_PAGES = 2

# What one page should weigh at most: far below what the transport reads of one answer, and small
# enough that the page, parsed, is a few tens of megabytes at most while its rows are read.
PAGE_BYTES = 2 * 1024 * 1024
MAX_PAGE_ROWS = 20_000
# Rows of each page whose size is measured (the JSON of a few hundred rows takes a millisecond).
SAMPLE_ROWS = 200


class PageSize:
    """How many rows the next page asks for: PAGE_BYTES over the largest row size seen so far (before
    any page, over `guess` bytes); or always `fixed` rows, when the caller chose (tests do)."""

    def __init__(self, guess: int, fixed: int | None = None) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError("page_size must be >= 1: Mage pages `_limit` <= 0 forever")
        self._row_bytes = max(guess, 1)
        self._fixed = fixed
        self._weighed = False

    def rows(self) -> int:
        if self._fixed is not None:
            return self._fixed
        return max(1, min(MAX_PAGE_ROWS, PAGE_BYTES // self._row_bytes))

    def weigh(self, rows: list[JsonObject]) -> None:
        """Learn from a page: the first one replaces the guess, later ones can only make rows heavier."""
        sample = rows[:SAMPLE_ROWS]
        if not sample:
            return
        # Each row's JSON, plus its comma; the mean, not the max: a page's size is the sum of its rows.
        measured = math.ceil(len(json.dumps(sample, separators=(",", ":"))) / len(sample))
        self._row_bytes = measured if not self._weighed else max(self._row_bytes, measured)
        self._weighed = True


class Listing(Generic[T]):
    """One pass over a paged listing (`_limit`/`_offset`, `metadata.count`/`next`), page by page, so that
    a caller can look at the first page before deciding to go on. Each row is passed through `read` as
    its page comes, so that only what is kept of the rows stays in memory."""

    def __init__(
        self,
        session: MageSession,
        path: str,
        key: str,
        params: dict[str, Any],
        size: PageSize,
        read: Callable[[Any], T],
    ) -> None:
        self._session = session
        self._path = path
        self._key = key
        self._params = params
        self._size = size
        self._read = read
        self._offset = 0
        self._pages = 0
        self._announced: int | None = None
        self.items: list[T] = []
        self.totals: set[int] = set()
        self.done = False

    def next_page(self) -> None:
        limit = self._size.rows()
        params = {**self._params, "_limit": limit, "_offset": self._offset}
        page = self._session.call("GET", self._path, params=params)
        with self._session.reading("GET", self._path):
            rows, count, more = _page_of(page, self._key)
            if self._announced is None:
                self._announced = _rows_allowed(count)
            self.totals.add(count)
            self.items += _read_rows(rows, self._key, self._offset, self._read)
            self._offset += len(rows)
            self._pages += 1
            self.done = not more or not rows
            # A little slack for rows added while listing, then no more: a server that pages forever is
            # refused (at the page size of now: pages grow and shrink with the rows' weight).
            if not self.done and self._pages >= math.ceil(self._announced / limit) + EXTRA_PAGES:
                raise WireError(
                    f"the listing did not end after {self._pages} pages of {limit} rows, though its first "
                    f"page said it holds {min(self.totals)} rows (metadata.next stays true)"
                )
            if len(self.items) > MAX_LISTING_ROWS:
                raise WireError(f"the listing holds more than {MAX_LISTING_ROWS} rows")
        self._size.weigh([row for row in rows[:SAMPLE_ROWS] if isinstance(row, dict)])

    def pages_left(self) -> int:
        """How many more pages the rows the first page announced take (0 once done)."""
        if self.done:
            return 0
        left = max(self.totals, default=0) - self._offset
        return max(1, math.ceil(left / self._size.rows()))

    def rest(self) -> list[T]:
        """Every item of the listing, reading the pages not read yet."""
        while not self.done:
            self.next_page()
        return self.items

    def adds_up(self, unique: int) -> bool:
        """Whether the pages agree with each other: every page gave the same count, and it is the number
        of distinct rows found. Rows added or removed mid-listing shift the pages, and it does not."""
        return self.totals == {unique}


def list_pages(
    session: MageSession,
    path: str,
    key: str,
    params: dict[str, Any],
    page_size: int,
    read: Callable[[Any], T],
) -> tuple[list[T], set[int]]:
    """Every item of a listing read in pages of `page_size` rows, and every `metadata.count` the pages
    gave: when rows move between pages, those counts disagree with the items, and the caller lists
    again."""
    listing = Listing(session, path, key, params, PageSize(page_size, fixed=page_size), read)
    return listing.rest(), listing.totals


# Guesses of a row's size before a page has been seen: a backfill is about 460 bytes in Mage 0.9.80, a
# pipeline about 650 plus some 400 per block (its listing form has no block code).
BACKFILL_ROW_GUESS = 1024
PIPELINE_ROW_GUESS = 4096
LIST_ATTEMPTS = 4


class Lister:
    """Backfills and pipelines as Mage lists them, in as few requests as it allows."""

    def __init__(self, session: MageSession, page_size: int | None = None) -> None:
        self._session = session
        self._page_size = page_size

    def backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]:
        """Every backfill (of one pipeline), each once, re-listing when rows moved between pages."""
        params = {} if pipeline_uuid is None else {"pipeline_uuid": pipeline_uuid}
        for _ in range(LIST_ATTEMPTS):
            found = _backfills_in(self._backfill_listing(params))
            if found is not None:
                return found
        raise MageError(f"backfills kept changing while being listed ({LIST_ATTEMPTS} tries); try again")

    def backfills_of(self, pipeline_uuids: Collection[str]) -> dict[str, list[LiveBackfill]]:
        """The backfills of each pipeline: from one listing of every backfill when that takes no more
        requests than a listing per pipeline would (the first page's count says), else one per pipeline,
        a few at a time."""
        wanted = sorted(set(pipeline_uuids))
        if len(wanted) < 2:
            return {uuid: self.backfills(uuid) for uuid in wanted}
        for _ in range(LIST_ATTEMPTS):
            listing = self._backfill_listing({})
            listing.next_page()
            if listing.pages_left() > len(wanted):
                return dict(zip(wanted, self._session.map(self.backfills, wanted), strict=True))
            found = _backfills_in(listing)
            if found is not None:
                grouped: dict[str, list[LiveBackfill]] = {uuid: [] for uuid in wanted}
                for live in found:
                    if live.pipeline_uuid in grouped:
                        grouped[live.pipeline_uuid].append(live)
                return grouped
        raise MageError(f"backfills kept changing while being listed ({LIST_ATTEMPTS} tries); try again")

    def pipeline_uuids(self) -> list[str]:
        """The uuids of every pipeline Mage lists."""
        return _uuids_in(self._pipeline_listing().rest())

    def missing_pipelines(self, pipeline_uuids: Collection[str]) -> list[str]:
        """Those of the pipelines Mage does not have, judged from its pipelines listing, unless asking
        about each one the listing's first page did not show takes fewer requests than its other pages."""
        unseen = sorted(set(pipeline_uuids))
        if len(unseen) > 1:
            listing = self._pipeline_listing()
            listing.next_page()
            shown = set(_uuids_in(listing.items))
            unseen = [uuid for uuid in unseen if uuid not in shown]
            if unseen and listing.pages_left() <= len(unseen):
                listed = set(_uuids_in(listing.rest()))
                unseen = [uuid for uuid in unseen if uuid not in listed]
        # Not listed is not missing yet: Mage leaves a pipeline it cannot load out of its listing, and
        # one created meanwhile shifts the pages. Each is asked about (few: a missing one stops the plan).
        exists = self._session.map(self.pipeline_exists, unseen)
        return [uuid for uuid, there in zip(unseen, exists, strict=True) if not there]

    def pipeline_exists(self, pipeline_uuid: str) -> bool:
        """Whether Mage knows the pipeline (an unknown one lists as [] with no error, so ask)."""
        try:
            self._session.call("GET", f"/api/pipelines/{quote(pipeline_uuid, safe='')}")
        except ApiError as exc:
            if missing_pipeline(exc) is not None:
                return False
            raise
        return True

    def _backfill_listing(self, params: dict[str, Any]) -> Listing[LiveBackfill]:
        # No include_run_count on lists: one row with units <= 0 would hang the server (§6 hazard 2).
        size = PageSize(BACKFILL_ROW_GUESS, self._page_size)
        return Listing(self._session, "/api/backfills", "backfills", params, size, backfill_from_wire)

    def _pipeline_listing(self) -> Listing[str | None]:
        size = PageSize(PIPELINE_ROW_GUESS, self._page_size)
        return Listing(self._session, "/api/pipelines", "pipelines", {}, size, pipeline_uuid_from_wire)


def _backfills_in(listing: Listing[LiveBackfill]) -> list[LiveBackfill] | None:
    """The listing's backfills, each once; None when they do not add up (the caller lists again)."""
    rows: dict[int, LiveBackfill] = {}
    for live in listing.rest():
        rows.setdefault(live.id, live)
    return list(rows.values()) if listing.adds_up(len(rows)) else None


def _uuids_in(uuids: list[str | None]) -> list[str]:
    return list(dict.fromkeys(uuid for uuid in uuids if uuid is not None))


def _page_of(page: JsonObject, key: str) -> tuple[list[Any], int, bool]:
    """The rows of one listing page, its `metadata.count` and `metadata.next`; WireError if malformed."""
    rows = page.get(key)
    if not isinstance(rows, list):
        raise WireError(f"{key} is {describe_value(rows)}, not a list")
    return rows, listing_count(page), bool(page["metadata"].get("next"))


def _rows_allowed(count: int) -> int:
    if count > MAX_LISTING_ROWS:
        raise WireError(f"metadata.count says {count} rows; backfill-sync reads at most {MAX_LISTING_ROWS}")
    return count


def _read_rows(rows: list[Any], key: str, offset: int, read: Callable[[Any], T]) -> list[T]:
    found: list[T] = []
    for index, row in enumerate(rows):
        try:
            found.append(read(row))
        except WireError as exc:
            raise WireError(f"{key}[{offset + index}]: {exc}") from None
    return found
