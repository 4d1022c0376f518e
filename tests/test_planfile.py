"""Saved plans: dump and load round-trip exactly; anything else is refused naming the file."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from backfill_sync.compare import fingerprint
from backfill_sync.errors import UsageError
from backfill_sync.models import Plan, SourceLocation
from backfill_sync.planfile import dump_plan, load_plan
from backfill_sync.render import plan_to_dict, render_plan_json
from backfill_sync.render.plan_json import plan_digest
from tests.factories import desired, every_action_plan, live, manifest, name_only_absent, plan_of


def with_sources(plan: Plan) -> Plan:
    pipelines = tuple(
        replace(
            pipeline,
            items=tuple(
                replace(item, desired=replace(item.desired, source=SourceLocation("b/x.yaml", n + 3, 5)))
                for n, item in enumerate(pipeline.items)
            ),
        )
        for pipeline in plan.pipelines
    )
    return replace(plan, pipelines=pipelines)


JUNK_LIVE = live(
    7, None, start=None, end="2024-01-31 00:00:00.250000", interval_type="Hour", units="5", status="weird"
)

PLANS = [
    pytest.param(every_action_plan(one_allow_restart=True), id="every-action"),
    pytest.param(with_sources(every_action_plan(one_allow_restart=True)), id="with-sources"),
    pytest.param(plan_of(), id="empty"),
    pytest.param(plan_of(manifest()), id="empty-manifest"),
    pytest.param(
        plan_of(
            manifest(desired("a", start="2024-01-01T00:00:00.123456Z", settings={"x": [1, {"y": None}]})),
            live_backfills=[JUNK_LIVE],
        ),
        id="junk-live-and-microseconds",
    ),
    pytest.param(
        plan_of(
            manifest(name_only_absent("gone"), name_only_absent("never-there")),
            live_backfills=[live(3, "gone", status="running")],
        ),
        id="absent-without-schedule",
    ),
]


@pytest.mark.parametrize("plan", PLANS)
def test_round_trip_is_exact(plan: Plan):
    text = dump_plan(plan)
    assert text == render_plan_json(plan)
    loaded = load_plan(text, "saved.json")
    assert dump_plan(loaded) == text


@pytest.mark.parametrize("plan", PLANS)
def test_loaded_plan_keeps_what_apply_compares(plan: Plan):
    loaded = load_plan(dump_plan(plan), "saved.json")
    assert loaded.mage_url == plan.mage_url
    assert loaded.allow_restart == plan.allow_restart
    for original, again in zip(plan.items(), loaded.items(), strict=True):
        assert again.desired == original.desired
        assert again.desired.source == original.desired.source
        assert again.actions == original.actions
        assert again.changes == original.changes
        assert (again.warnings, again.notes) == (original.warnings, original.notes)
        assert again.fingerprint == original.fingerprint
        if original.live is None:
            assert again.live is None
        else:
            assert again.live is not None
            assert (again.live.id, again.live.name, again.live.status) == (
                original.live.id,
                original.live.name,
                original.live.status,
            )
            # apply fingerprints the live backfill it reads again; the plan's own view must agree
            assert fingerprint(again.live) == fingerprint(original.live) == again.fingerprint
    for original_pipeline, again_pipeline in zip(plan.pipelines, loaded.pipelines, strict=True):
        assert [fingerprint(b) for b in again_pipeline.unmanaged] == [
            fingerprint(b) for b in original_pipeline.unmanaged
        ]


def test_saved_plan_has_no_credentials():
    plan = replace(
        every_action_plan(one_allow_restart=True), mage_url="https://admin:hunter2@mage.example.com/"
    )
    text = dump_plan(plan)
    assert "hunter2" not in text
    assert load_plan(text, "saved.json").mage_url == "https://mage.example.com"


def _broken(change) -> str:
    document = plan_to_dict(every_action_plan(one_allow_restart=True))
    change(document)
    return json.dumps(document)


def _set(path: list[object], value: object):
    def change(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            _broken(_set(["pipelines", 0, "items", 0, "desired", "schedule"], None)),
            r"saved\.json: not a valid saved plan: "
            r"pipelines\[0\]\.items\[0\]\.desired\.schedule: None is not of type 'object'",
            id="schedule-missing-but-not-absent",
        ),
        pytest.param("{not json", r"saved\.json: not a saved plan: invalid JSON", id="not-json"),
        pytest.param("[]", r"saved\.json: not a saved backfill-sync plan \(no format_version\)", id="a-list"),
        pytest.param('{"hello": 1}', r"saved\.json: not a saved backfill-sync plan", id="other-json"),
        pytest.param(
            _broken(_set(["format_version"], 3)),
            r"saved\.json: saved plan format_version 3 is not supported "
            r"\(this backfill-sync reads version 2\)",
            id="newer-version",
        ),
        pytest.param(
            _broken(lambda d: d.pop("mage_url")),
            r"saved\.json: not a valid saved plan: \(top level\): 'mage_url' is a required property",
            id="missing-url",
        ),
        pytest.param(
            _broken(
                _set(["pipelines", 0, "items", 0, "desired", "schedule", "start_datetime"], "2024-01-01")
            ),
            r"saved\.json: not a valid saved plan: "
            r"pipelines\[0\]\.items\[0\]\.desired\.schedule\.start_datetime: '2024-01-01' does not match",
            id="bad-datetime",
        ),
        pytest.param(
            _broken(_set(["pipelines", 0, "items", 1, "actions", 1, "kind"], "explode")),
            r"saved\.json: not a valid saved plan: pipelines\[0\]\.items\[1\]\.actions\[1\]\.kind",
            id="unknown-action",
        ),
        pytest.param(
            _broken(_set(["pipelines", 0, "items", 0, "extra"], True)),
            r"saved\.json: not a valid saved plan: pipelines\[0\]\.items\[0\]: Additional properties",
            id="extra-field",
        ),
    ],
)
def test_anything_else_is_a_usage_error_naming_the_file(text: str, message: str):
    with pytest.raises(UsageError, match=message):
        load_plan(text, "saved.json")


def _edited(change, *, redigest: bool) -> str:
    document = plan_to_dict(every_action_plan(one_allow_restart=True))
    change(document)
    if redigest:
        document["digest"] = plan_digest(document)
    return json.dumps(document)


def _rename_create(document):
    item = document["pipelines"][0]["items"][0]
    item["desired"]["name"] = "other-name"
    item["desired"]["variables"] = {"injected": True}


def test_a_plan_edited_after_plan_wrote_it_is_refused():
    with pytest.raises(UsageError, match=r"saved\.json: the saved plan was changed after `plan` wrote it"):
        load_plan(_edited(_rename_create, redigest=False), "saved.json")


def test_a_plan_whose_parts_disagree_is_refused_even_with_a_fresh_digest():
    # Shows `create "new-hourly"` while its desired backfill would create "other-name" with injected
    # variables: what apply shows must be what it does.
    with pytest.raises(
        UsageError, match=r"backfill 'new-hourly' .*: its name or pipeline differs .*; its field changes"
    ):
        load_plan(_edited(_rename_create, redigest=True), "saved.json")


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        pytest.param(["pipelines", 0, "items", 3, "actions"], [], "its actions", id="start-dropped"),
        pytest.param(
            ["pipelines", 0, "items", 9, "actions", 1, "dates"],
            ["2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"],
            "its run names dates its window does not explain",
            id="run-of-other-dates",
        ),
        pytest.param(
            ["pipelines", 0, "items", 11, "actions", 0, "runs"],
            30,
            "its retry does not add up",
            id="retry-count",
        ),
    ],
)
def test_actions_that_do_not_follow_from_the_item_are_refused(path, value, problem):
    with pytest.raises(UsageError, match=problem):
        load_plan(_edited(_set(path, value), redigest=True), "saved.json")
