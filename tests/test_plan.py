"""compute_plan: matching, the state table, warnings and notes, and normalisation (pure, no I/O)."""

from __future__ import annotations

import dataclasses

import pytest

from backfill_sync.compare import fingerprint
from backfill_sync.errors import PlanError, PlanProblem
from backfill_sync.models import Action, DesiredBackfill, DesiredState, LiveBackfill, PlanItem, SourceLocation
from backfill_sync.plan import RESTART_BLOCKED, RUNS_STAY_NOTE
from backfill_sync.plan_runs import WINDOW_NOT_MANAGED_WARNING
from backfill_sync.render import render_plan_markdown, render_plan_text
from tests.factories import desired, live, manifest, name_only_absent, plan_of

DAYS_IN_JANUARY = 31  # the factories' default window: 2024-01-01 .. 2024-01-31 daily
UNFINISHED = {"initial": 5, "running": 2, "completed": 7, "failed": 1}


def plan_one(want: DesiredBackfill, *live_backfills: LiveBackfill, allow_restart: bool = False) -> PlanItem:
    plan = plan_of(manifest(want), live_backfills=live_backfills, allow_restart=allow_restart)
    (item,) = plan.items()
    return item


# ---------------------------------------------------------------------------------------------------------
# Matching


@pytest.mark.parametrize(
    ("want", "live_backfills", "expected_id"),
    [
        pytest.param(desired("a"), [live(1, "a")], 1, id="by-name"),
        pytest.param(desired("a"), [live(1, "b")], None, id="no-match-creates"),
        pytest.param(
            desired("a", id=5), [live(5, "a"), live(6, "a")], 5, id="pinned-id-picks-among-same-names"
        ),
        pytest.param(desired("a", id=5), [live(5, "other")], 5, id="pinned-id-renames"),
        pytest.param(desired("new", previous_names=["old"]), [live(3, "old")], 3, id="by-previous-name"),
        pytest.param(
            desired("new", previous_names=["older", "old"]), [live(3, "old")], 3, id="by-any-previous-name"
        ),
        pytest.param(desired("a"), [live(1, "A")], None, id="names-are-case-sensitive"),
    ],
)
def test_matching(want, live_backfills, expected_id):
    assert plan_one(want, *live_backfills).live_id == expected_id


def test_a_rename_by_previous_name_is_an_update_of_the_name():
    item = plan_one(desired("new", previous_names=["old"]), live(3, "old"))
    assert [action.kind for action in item.actions] == ["update"]
    assert [(c.field, c.before, c.after) for c in item.changes] == [("name", "old", "new")]


def test_a_pinned_id_with_another_name_renames_it():
    item = plan_one(desired("new", id=5), live(5, "old"))
    assert [(c.field, c.before, c.after) for c in item.changes] == [("name", "old", "new")]


@pytest.mark.parametrize(
    ("want", "live_backfills", "ids"),
    [
        pytest.param(
            desired("a"),
            [live(1, "a", status="running"), live(2, "a", status="completed")],
            "1, 2",
            id="same-name-twice",
        ),
        pytest.param(
            desired("a"), [live(1, "a"), live(2, "a", status="running")], "1, 2", id="a-newer-one-started"
        ),
        pytest.param(
            desired("a", previous_names=["b"]), [live(7, "b"), live(8, "b")], "7, 8", id="previous-name-twice"
        ),
        pytest.param(
            desired("a", previous_names=["b"]), [live(7, "a"), live(8, "b")], "7, 8", id="name-and-previous"
        ),
    ],
)
def test_ambiguous_matches_name_the_ids(want, live_backfills, ids):
    with pytest.raises(PlanError, match=f"ids {ids}"):
        plan_one(want, *live_backfills)


def test_a_pinned_id_not_in_the_pipeline_is_refused():
    foreign = live(9, "a", pipeline="other_pipeline")
    with pytest.raises(PlanError, match="pins id 9, which is not a backfill of pipeline 'etl_daily'"):
        plan_one(desired("a", id=9), live(1, "a"), foreign)


@pytest.mark.parametrize(
    "backfills",
    [
        pytest.param((desired("a"), desired("b", previous_names=["a"])), id="name-and-previous-name"),
        pytest.param((desired("a"), desired("b", id=1)), id="name-and-pinned-id"),
        pytest.param((desired("x", id=1), desired("y", id=1)), id="pinned-twice"),
    ],
)
def test_one_live_backfill_claimed_twice_is_refused(backfills):
    with pytest.raises(PlanError, match=r"all match live backfill id 1 of pipeline 'etl_daily'"):
        plan_of(manifest(*backfills), live_backfills=[live(1, "a")])


def test_unclaimed_live_backfills_are_listed_unmanaged_in_order():
    live_backfills = [live(1, "z"), live(2, "a"), live(3, "m")]
    plan = plan_of(manifest(desired("a")), live_backfills=live_backfills)
    (pipeline,) = plan.pipelines
    assert [backfill.id for backfill in pipeline.unmanaged] == [1, 3]
    assert pipeline.items[0].live_id == 2


def test_unmanaged_backfills_are_listed_by_id_whatever_order_mage_lists_them_in():
    live_backfills = [live(backfill_id, f"b{backfill_id}") for backfill_id in (18, 17, 16, 15, 12, 13)]
    plan = plan_of(manifest(desired("a")), live_backfills=live_backfills)
    assert [backfill.id for backfill in plan.pipelines[0].unmanaged] == [12, 13, 15, 16, 17, 18]
    text = render_plan_text(plan, color=False)
    assert [line.split()[1] for line in text.splitlines() if line.startswith("    id ")] == [
        "12",
        "13",
        "15",
        "16",
        "17",
        "18",
    ]
    markdown = render_plan_markdown(plan)
    assert markdown.index('id 12 "b12"') < markdown.index('id 13 "b13"') < markdown.index('id 18 "b18"')


def test_live_backfills_of_other_pipelines_are_not_listed():
    plan = plan_of(manifest(desired("a")), live_backfills=[live(1, "a", pipeline="other")])
    assert plan.pipelines[0].unmanaged == ()
    assert plan.items()[0].live_id is None


# ---------------------------------------------------------------------------------------------------------
# The state table (issue 4): desired state x live status -> status action


def _kinds(item: PlanItem) -> list[tuple[str, int | None, bool]]:
    return [(action.kind, action.runs, action.is_blocked) for action in item.actions]


@pytest.mark.parametrize(
    ("state", "status", "expected"),
    [
        pytest.param("started", None, [("start", DAYS_IN_JANUARY, False)], id="started/null->start"),
        pytest.param("started", "initial", [], id="started/initial"),
        pytest.param("started", "running", [], id="started/running"),
        pytest.param("started", "completed", [], id="started/completed"),
        pytest.param("started", "failed", [], id="started/failed"),
        pytest.param(
            "started", "cancelled", [("restart", DAYS_IN_JANUARY, True)], id="started/cancelled->blocked"
        ),
        pytest.param("cancelled", None, [("cancel", 0, False)], id="cancelled/null->cancel"),
        pytest.param("cancelled", "initial", [("cancel", 7, False)], id="cancelled/initial->cancel"),
        pytest.param("cancelled", "running", [("cancel", 7, False)], id="cancelled/running->cancel"),
        pytest.param("cancelled", "completed", [], id="cancelled/completed"),
        pytest.param("cancelled", "failed", [], id="cancelled/failed"),
        pytest.param("cancelled", "cancelled", [], id="cancelled/cancelled"),
        pytest.param("absent", None, [("delete", 0, False)], id="absent/null"),
        pytest.param("absent", "initial", [("delete", 7, False)], id="absent/initial"),
        pytest.param("absent", "running", [("delete", 7, False)], id="absent/running"),
        pytest.param("absent", "completed", [("delete", 0, False)], id="absent/completed"),
        pytest.param("absent", "failed", [("delete", 0, False)], id="absent/failed"),
        pytest.param("absent", "cancelled", [("delete", 0, False)], id="absent/cancelled"),
        pytest.param(None, None, [], id="no-state/null"),
        pytest.param(None, "running", [], id="no-state/running"),
        pytest.param(None, "cancelled", [], id="no-state/cancelled"),
    ],
)
def test_state_table(state: DesiredState | None, status: str | None, expected):
    item = plan_one(desired("a", state=state), live(1, "a", status=status, run_status_counts=UNFINISHED))
    assert _kinds(item) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(None, [("create", None, False)], id="create"),
        pytest.param("started", [("create", None, False), ("start", DAYS_IN_JANUARY, False)], id="and-start"),
        pytest.param("cancelled", [("create", None, False), ("cancel", 0, False)], id="and-cancel"),
        pytest.param("absent", [], id="absent-stays-absent"),
    ],
)
def test_creates(state: DesiredState | None, expected):
    item = plan_one(desired("a", state=state))
    assert _kinds(item) == expected
    assert item.live is None
    assert item.fingerprint is None


def test_restart_is_planned_with_allow_restart():
    item = plan_one(desired("a", state="started"), live(1, "a", status="cancelled"), allow_restart=True)
    assert item.actions == (Action("restart", runs=DAYS_IN_JANUARY),)


def test_restart_blocked_says_how_to_allow_it():
    item = plan_one(desired("a", state="started"), live(1, "a", status="cancelled"))
    assert item.actions[0].blocked == RESTART_BLOCKED
    assert "--allow-restart" in RESTART_BLOCKED


@pytest.mark.parametrize("state", ["cancelled", "absent"])
def test_unknown_run_counts_are_unknown_not_zero(state: DesiredState):
    item = plan_one(desired("a", state=state), live(1, "a", status="running", run_status_counts=None))
    assert item.actions[-1].runs is None


def test_field_edit_and_status_action_come_in_order():
    item = plan_one(desired("a", end="2024-02-29", state="started"), live(1, "a"))
    assert [action.kind for action in item.actions] == ["update", "start"]
    assert item.actions[1].runs == 60  # the new window, not the live one


def test_delete_sends_no_field_changes():
    item = plan_one(desired("a", end="2024-02-29", state="absent"), live(1, "a"))
    assert item.changes == ()
    assert [action.kind for action in item.actions] == ["delete"]


# ---------------------------------------------------------------------------------------------------------
# Warnings and notes


@pytest.mark.parametrize(
    ("status", "end", "warned"),
    [
        pytest.param("running", "2024-02-29", True, id="edit-after-start"),
        pytest.param("completed", "2024-02-29", True, id="edit-after-completion"),
        pytest.param("cancelled", "2024-02-29", True, id="edit-after-cancel"),
        pytest.param(None, "2024-02-29", False, id="edit-before-start"),
        pytest.param("running", "2024-01-31", False, id="no-edit"),
    ],
)
def test_edits_after_start_warn(status: str | None, end: str, warned: bool):
    item = plan_one(desired("a", end=end), live(1, "a", status=status))
    # Without `state: started` the runs are left alone, and the warning says how to have them follow.
    assert (WINDOW_NOT_MANAGED_WARNING in item.warnings) is warned


def test_an_unknown_live_status_warns_and_does_nothing():
    item = plan_one(desired("a", state="started"), live(1, "a", status="paused"))
    assert item.actions == ()
    assert item.warnings == ("Mage reports an unknown status 'paused'",)


@pytest.mark.parametrize(
    ("state", "status", "notes"),
    [
        pytest.param(
            "cancelled", "completed", ("already completed: nothing left to cancel",), id="cancel-completed"
        ),
        pytest.param("cancelled", "failed", ("already failed: nothing left to cancel",), id="cancel-failed"),
        pytest.param("absent", "completed", (RUNS_STAY_NOTE,), id="delete-keeps-runs"),
        pytest.param("absent", "running", (RUNS_STAY_NOTE,), id="delete-running"),
        pytest.param("started", "running", (), id="nothing-to-say"),
    ],
)
def test_notes(state: DesiredState, status: str, notes: tuple[str, ...]):
    assert plan_one(desired("a", state=state), live(1, "a", status=status)).notes == notes


def test_absent_and_not_there_notes_already_absent():
    item = plan_one(desired("a", state="absent"), live(1, "b"))
    assert item.actions == ()
    assert item.notes == ("already absent",)


@pytest.mark.parametrize(
    ("status", "runs"),
    [pytest.param(None, 0, id="never-started"), pytest.param("running", 7, id="running")],
)
def test_a_name_only_absent_entry_deletes_without_comparing(status: str | None, runs: int):
    item = plan_one(name_only_absent("a"), live(1, "a", status=status, run_status_counts=UNFINISHED))
    assert item.changes == ()
    assert item.actions == (Action("delete", runs=runs),)
    assert item.notes == (RUNS_STAY_NOTE,)


def test_a_name_only_absent_entry_that_is_not_there_does_nothing():
    item = plan_one(name_only_absent("a"), live(1, "b"))
    assert (item.live, item.changes, item.actions) == (None, (), ())
    assert item.notes == ("already absent",)


# ---------------------------------------------------------------------------------------------------------
# Normalisation: equal things never show as changes, different things always do


@pytest.mark.parametrize(
    ("want", "have"),
    [
        pytest.param(desired("a"), live(1, "a"), id="identical"),
        pytest.param(desired("a", start="2024-01-01T00:00:00Z"), live(1, "a"), id="naive-vs-Z"),
        pytest.param(desired("a", start="2024-01-01T02:00:00+02:00"), live(1, "a"), id="offset-vs-naive"),
        pytest.param(desired("a"), live(1, "a", start="2024-01-01T00:00:00+00:00"), id="live-with-offset"),
        pytest.param(desired("a"), live(1, "a", interval_type="Day"), id="interval-type-case"),
        pytest.param(desired("a", variables=None), live(1, "a", variables={}), id="null-vs-empty-variables"),
        pytest.param(desired("a", variables={}), live(1, "a", variables=None), id="empty-vs-null-variables"),
        pytest.param(desired("a", settings=None), live(1, "a", settings={}), id="null-vs-empty-settings"),
        pytest.param(
            desired("a", variables={"x": 1, "y": {"z": [1, 2]}}),
            live(1, "a", variables={"y": {"z": [1, 2]}, "x": 1}),
            id="key-order",
        ),
        pytest.param(
            desired("a", start="2024-01-01T00:00:00.000000"),
            live(1, "a", start="2024-01-01 00:00:00.000000"),
            id="zero-microseconds",
        ),
        pytest.param(
            desired("a", start="2024-01-01T00:00:00.5Z"),
            live(1, "a", start="2024-01-01 00:00:00.500000"),
            id="microseconds",
        ),
        pytest.param(desired("a", start="2024-01-01"), live(1, "a"), id="date-vs-midnight"),
    ],
)
def test_equal_things_are_no_change(want: DesiredBackfill, have: LiveBackfill):
    item = plan_one(want, have)
    assert item.changes == ()
    assert item.actions == ()


@pytest.mark.parametrize(
    ("want", "have", "field", "before", "after"),
    [
        pytest.param(
            desired("a", start="2024-01-01T00:00:00.5Z"),
            live(1, "a"),
            "start_datetime",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.500000Z",
            id="microseconds-differ",
        ),
        pytest.param(desired("a", units=2), live(1, "a"), "interval_units", 1, 2, id="units"),
        pytest.param(
            desired("a"), live(1, "a", units="1"), "interval_units", "1", 1, id="units-stored-as-str"
        ),
        pytest.param(
            desired("a"), live(1, "a", units=1.0), "interval_units", 1.0, 1, id="units-stored-as-float"
        ),
        pytest.param(
            desired("a", interval_type="hour"), live(1, "a"), "interval_type", "day", "hour", id="interval"
        ),
        pytest.param(
            desired("a", settings={"retries": 1}), live(1, "a"), "settings", {}, {"retries": 1}, id="settings"
        ),
        pytest.param(
            desired("a", variables={"n": 1}),
            live(1, "a", variables={"n": True}),
            "variables",
            {"n": True},
            {"n": 1},
            id="bool-is-not-int",
        ),
    ],
)
def test_different_things_are_changes(want, have, field, before, after):
    item = plan_one(want, have)
    assert [(c.field, c.before, c.after) for c in item.changes] == [(field, before, after)]
    assert [action.kind for action in item.actions] == ["update"]


def test_nested_changes_have_one_detail_line_per_key():
    want = desired("a", variables={"region": "us", "full": True, "keep": 1})
    item = plan_one(want, live(1, "a", variables={"region": "eu", "drop": "x", "keep": 1}))
    (change,) = item.changes
    assert change.details == (
        'drop: removed (was "x")',
        "full: added true",
        'region: "eu" -> "us"',
    )


def test_a_create_lists_the_fields_it_sends_without_empty_objects_or_details():
    item = plan_one(desired("a", variables={"region": "eu"}))
    assert [(c.field, c.before) for c in item.changes] == [
        ("name", None),
        ("start_datetime", None),
        ("end_datetime", None),
        ("interval_type", None),
        ("interval_units", None),
        ("variables", None),
    ]
    assert all(change.details == () for change in item.changes)


def test_the_fingerprint_is_of_the_live_backfill_seen():
    have = live(1, "a", status="running")
    assert plan_one(desired("a"), have).fingerprint == fingerprint(have)


def test_the_fingerprint_ignores_moves_within_a_status_class():
    running = live(1, "a", status="running", run_status_counts={"running": 3})
    completed = live(1, "a", status="completed", run_status_counts={"completed": 9})
    assert fingerprint(running) == fingerprint(completed)
    assert fingerprint(running) != fingerprint(live(1, "a", status="cancelled"))
    assert fingerprint(running) != fingerprint(live(1, "a", status="running", end="2024-02-01 00:00:00"))


def test_compute_plan_keeps_manifest_order_and_the_url():
    first = manifest(desired("a", pipeline="p1"), pipeline="p1")
    second = manifest(desired("b", pipeline="p0"), pipeline="p0")
    plan = plan_of(first, second, mage_url="http://mage:6789", allow_restart=True)
    assert [pipeline.pipeline_uuid for pipeline in plan.pipelines] == ["p1", "p0"]
    assert plan.mage_url == "http://mage:6789"
    assert plan.allow_restart is True
    assert plan.has_changes()


def test_no_changes_plan_has_no_changes():
    plan = plan_of(manifest(desired("a", state="started")), live_backfills=[live(1, "a", status="running")])
    assert not plan.has_changes()


def test_problems_of_every_pipeline_are_reported_together():
    first = manifest(desired("a", id=9))
    second = manifest(desired("b", pipeline="other", id=8), pipeline="other")
    with pytest.raises(PlanError) as caught:
        plan_of(first, second)
    message = str(caught.value)
    assert "pins id 9" in message
    assert "pins id 8" in message


def test_a_pinned_rename_onto_another_backfills_name_is_refused():
    with pytest.raises(PlanError, match="id 3 would be renamed to 'st', the name of live backfill id 2"):
        plan_one(desired("st", id=3), live(2, "st"), live(3, "st2"))


def test_a_rename_alone_carries_no_warning_about_runs():
    item = plan_one(desired("new", previous_names=["old"]), live(1, "old", status="running"))
    assert [change.field for change in item.changes] == ["name"]
    assert item.warnings == ()


RENAME_HINT = (
    'same window and variables as unmanaged id 2 "reload-eu-2024-q1": renamed? '
    "add previous_names: [reload-eu-2024-q1] to keep it"
)


def test_a_create_alike_an_unmanaged_started_backfill_asks_whether_it_was_renamed():
    old = live(2, "reload-eu-2024-q1", variables={"region": "eu"}, status="completed")
    item = plan_one(desired("reload-eu", variables={"region": "eu"}, state="started"), old)
    assert [action.kind for action in item.actions] == ["create", "start"]
    assert item.warnings == (RENAME_HINT,)


@pytest.mark.parametrize(
    "old",
    [
        pytest.param(live(2, "reload-eu-2024-q1", end="2024-01-30 00:00:00"), id="other-window"),
        pytest.param(live(2, "reload-eu-2024-q1", variables={"region": "us"}), id="other-variables"),
        pytest.param(live(2, "reload-eu-2024-q1", units=2), id="other-interval"),
        pytest.param(live(2, None), id="no-name-to-keep"),
    ],
)
def test_a_create_unlike_any_unmanaged_backfill_asks_nothing(old):
    item = plan_one(desired("reload-eu", variables={"region": "eu"}, state="started"), old)
    assert item.warnings == ()


def test_a_name_yaml_would_misread_is_quoted_in_the_hint():
    item = plan_one(desired("new"), live(2, "a: b"))
    (warning,) = item.warnings
    assert warning.endswith('unmanaged id 2 "a: b": renamed? add previous_names: ["a: b"] to keep it')


def test_a_backfill_managed_already_asks_nothing():
    # Only a create asks: an update of a backfill found by its name is no rename.
    item = plan_one(desired("a", state="started"), live(1, "a", status="running"), live(2, "b"))
    assert item.warnings == ()


def test_never_started_twins_of_the_name_are_deleted_and_the_lowest_id_kept():
    item = plan_one(desired("a", state="started"), live(4, "a"), live(9, "a"), live(2, "a"))
    assert item.live_id == 2
    assert [(action.kind, action.ids) for action in item.actions] == [("delete_twins", (4, 9)), ("start", ())]


def test_twins_are_not_listed_as_unmanaged():
    plan = plan_of(manifest(desired("a")), live_backfills=[live(1, "a"), live(3, "a")])
    assert plan.pipelines[0].unmanaged == ()


def at(line: int, backfill: DesiredBackfill) -> DesiredBackfill:
    """The backfill as loaded from line `line` of its manifest."""
    where = SourceLocation(f"backfills/{backfill.pipeline_uuid}.yaml", line, 5)
    return dataclasses.replace(backfill, source=where)


@pytest.mark.parametrize(
    ("manifests", "live_backfills", "places"),
    [
        pytest.param(
            [manifest(at(4, desired("a")))],
            [live(1, "a", status="completed"), live(2, "a", status="completed")],
            [("etl_daily", 4)],
            id="ambiguous",
        ),
        pytest.param([manifest(at(9, desired("a", id=9)))], [], [("etl_daily", 9)], id="foreign-id"),
        pytest.param(
            [manifest(at(3, desired("x", id=1)), at(8, desired("y", id=1)))],
            [live(1, "a")],
            [("etl_daily", 8)],
            id="claimed-twice-at-the-second-claimant",
        ),
        pytest.param(
            [
                manifest(at(4, desired("a", id=7))),
                manifest(at(6, desired("b", pipeline="other", id=8)), pipeline="other"),
            ],
            [],
            [("etl_daily", 4), ("other", 6)],
            id="every-pipeline",
        ),
    ],
)
def test_plan_problems_carry_the_manifest_place(manifests, live_backfills, places):
    with pytest.raises(PlanError) as caught:
        plan_of(*manifests, live_backfills=live_backfills)
    problems = caught.value.problems
    assert [(p.file, p.line, p.col) for p in problems] == [
        (f"backfills/{pipeline}.yaml", line, 5) for pipeline, line in places
    ]
    assert str(caught.value) == "\n".join(f"{p.file}:{p.line}:5: {p.message}" for p in problems)


def test_a_plan_problem_without_a_line_names_its_file():
    problem = PlanProblem.at(None, "no such pipeline", file="backfills/x.yaml")
    assert (problem.file, problem.line, str(problem)) == (
        "backfills/x.yaml",
        None,
        "backfills/x.yaml: no such pipeline",
    )
    assert str(PlanProblem("bare")) == "bare"


def test_a_twin_of_the_new_name_beside_a_backfill_found_by_its_previous_name():
    # A rename whose create-twin appeared: the renamed backfill (id 1) stays, the twin (id 5) goes.
    plan = plan_of(
        manifest(desired("new", previous_names=["old"])),
        live_backfills=[live(1, "old", status="completed"), live(5, "new")],
    )
    (item,) = plan.items()
    assert item.live_id == 1
    assert [(action.kind, action.ids) for action in item.actions] == [("delete_twins", (5,)), ("update", ())]
    assert plan.pipelines[0].unmanaged == ()
