"""Per-key details of a changed JSON object: flat objects skip deepdiff and must say exactly what it says."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from backfill_sync.compare import deep_details, nested_details

SCALARS: tuple[Any, ...] = ("eu", "us", "", "1", 0, 1, 2, -1, 1.0, 0.5, 1e20, True, False, None)
KEYS = ("region", "n", "dry_run", "a.b", "x-y", "K_9")


def test_flat_objects_get_deepdiffs_lines_for_every_pair_of_scalars():
    for old, new in itertools.product(SCALARS, repeat=2):
        before, after = {"k": old, "same": 1}, {"k": new, "same": 1}
        assert nested_details(before, after) == deep_details(before, after), (old, new)


def test_flat_objects_get_deepdiffs_lines_for_added_and_removed_keys():
    picks = random.Random(12)
    for _ in range(1000):
        before = {key: picks.choice(SCALARS) for key in picks.sample(KEYS, picks.randint(0, len(KEYS)))}
        after = {key: picks.choice(SCALARS) for key in picks.sample(KEYS, picks.randint(0, len(KEYS)))}
        assert nested_details(before, after) == deep_details(before, after), (before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"a": {"b": 1}}, {"a": {"b": 2}}, id="nested"),
        pytest.param({"a": [1, 2]}, {"a": [1, 3, 4]}, id="list"),
        pytest.param({"it's": 1}, {"it's": 2}, id="quoted-key"),
        pytest.param({"a b": 1}, {"a b": 2}, id="spaced-key"),
    ],
)
def test_other_objects_go_through_deepdiff(before, after):
    assert nested_details(before, after) == deep_details(before, after)
    assert nested_details(before, after)


def test_the_usual_variables_change_reads_as_before():
    assert nested_details({"region": "eu", "n": 1}, {"region": "us", "n": 1, "dry": True}) == (
        "dry: added true",
        'region: "eu" -> "us"',
    )
