"""Hostile manifests: validate and plan refuse each one at its place, never with a traceback."""

from __future__ import annotations

import pytest

from backfill_sync.cli import main
from tests.test_validate_cli import INVALID, expected_lines

# Each of these once ended in a traceback (RecursionError, OverflowError, int-str ValueError, KeyError,
# chr() ValueError), or passed validate: a lone surrogate (then plan crashed encoding it), hidden text.
HOSTILE = (
    "deep_nesting",
    "datetime_overflow",
    "huge_integer",
    "lone_surrogate",
    "wrong_tag_values",
    "escape_out_of_range",
    "hidden_characters",  # not a crash, but plan must stop on it too
)


@pytest.mark.parametrize("case", HOSTILE)
def test_plan_refuses_a_hostile_manifest_before_reaching_mage(case, capsys, monkeypatch):
    monkeypatch.chdir(INVALID / case)
    monkeypatch.setenv("MAGE_URL", "http://127.0.0.1:9")  # never contacted: the manifests fail first
    assert main(["plan", "."]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors[:-1] == expected_lines(case)
    assert errors[-1].startswith("Error: ")
