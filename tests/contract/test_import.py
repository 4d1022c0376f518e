"""import end to end: live backfills -> manifests that validate, are formatted, and plan as "No changes".

Each test makes its own pipeline (`hf_import_<random>`) so `--pipeline` imports only what the test made.
Runs against the emulator always and, under `-m real_mage`, against a real Mage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backfill_sync.cli import main
from backfill_sync.client import MageClient
from backfill_sync.models import BackfillFields, LiveBackfill
from tests.contract.conftest import Ran
from tests.contract.servers import MageServer
from tests.emulator_http import Api, login

WINDOW = {
    "start_datetime": datetime(2024, 1, 1, tzinfo=UTC),
    "end_datetime": datetime(2024, 1, 2, 6, 30, tzinfo=UTC),
    "interval_type": "day",
    "interval_units": 1,
}


@pytest.fixture
def raw(server: MageServer) -> Api:
    """The owner over plain HTTP: for what MageClient will not send (block_uuid, nameless rows)."""
    return Api(server.url, login(server.url, server.owner.email, server.owner.password))


class Pipeline:
    """A pipeline of the test's own, and the backfills made in it (all deleted afterwards)."""

    def __init__(self, mage: MageClient, raw: Api) -> None:
        self.mage = mage
        self.raw = raw
        self.uuid = f"hf_import_{uuid.uuid4().hex[:10]}"
        answer = raw("POST", "/api/pipelines", {"pipeline": {"name": self.uuid, "type": "python"}})
        assert answer.error is None, answer.body

    def create(self, name: str | None, **fields: object) -> LiveBackfill:
        if name is None:
            return self.mage.get_backfill(self.raw.create(self.uuid)["id"])  # type: ignore[return-value]
        return self.mage.create_backfill(self.uuid, BackfillFields(name=name, **{**WINDOW, **fields}))  # type: ignore[arg-type]

    def clean_up(self) -> None:
        for live in self.mage.list_backfills(self.uuid):
            if live.status in ("initial", "running"):
                self.mage.set_status(self.uuid, live.id, "cancelled")
            self.mage.delete_backfill(self.uuid, live.id)
        self.raw("DELETE", f"/api/pipelines/{self.uuid}")  # best effort: the backfills are what matter


@pytest.fixture
def make_pipeline(mage: MageClient, raw: Api) -> Iterator[Callable[[], Pipeline]]:
    made: list[Pipeline] = []

    def make() -> Pipeline:
        made.append(Pipeline(mage, raw))
        return made[-1]

    try:
        yield make
    finally:
        for pipeline in made:
            pipeline.clean_up()


def assert_round_trip(cli: Callable[..., Ran], folder: Path) -> None:
    """What import promises: validate passes, fmt --check passes, plan reports no changes."""
    validated = cli("validate", str(folder))
    assert validated.code == 0, validated.out
    checked = cli("fmt", "--check", str(folder))
    assert (checked.code, checked.out) == (0, ""), checked.out
    planned = cli("plan", "--detailed-exitcode", str(folder))
    assert planned.code == 0, planned.out + planned.err
    assert "No changes." in planned.out


def test_import_writes_every_expressible_backfill_and_lists_the_rest(
    make_pipeline: Callable[[], Pipeline], raw: Api, mage: MageClient, cli: Callable[..., Ran], tmp_path: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.create("never-started", variables={"region": "eu", "flag": "yes"})
    started = pipeline.create("started", settings={"note": "x"})
    mage.set_status(pipeline.uuid, started.id, "initial")
    cancelled = pipeline.create("cancelled")
    mage.set_status(pipeline.uuid, cancelled.id, "cancelled")
    first_twin = pipeline.create("twin")
    second_twin = pipeline.create("twin")
    blocked = pipeline.create("with-block")
    assert raw.put(blocked.id, block_uuid="some_block").error is None
    nameless = pipeline.create(None)
    folder = tmp_path / "backfills"

    ran = cli("import", "--pipeline", pipeline.uuid, "--out-dir", str(folder))

    assert ran.code == 1
    manifest = folder / f"{pipeline.uuid}.yaml"
    assert ran.out == f"wrote {manifest} (4 backfills)\n"
    assert f"backfill {second_twin.id} 'twin': backfill {first_twin.id} has the same name" in ran.err
    assert f"backfill {blocked.id} 'with-block': it has a block_uuid ('some_block')" in ran.err
    assert f"backfill {nameless.id}: it has no name" in ran.err
    assert [path.name for path in folder.iterdir()] == [manifest.name]
    text = manifest.read_text(encoding="utf-8")
    # No schema in this folder or above it: no modeline (an address that serves nothing), but a hint.
    assert text.startswith("pipeline_uuid: ")
    assert "hint: the manifests have no schema modeline" in ran.err
    assert "`backfill-sync schema > schemas/backfill-manifest.schema.json`" in ran.err
    assert "  - name: never-started\n    start_datetime: '2024-01-01T00:00:00Z'\n" in text
    assert "    end_datetime: '2024-01-02T06:30:00Z'\n" in text
    assert "      flag: 'yes'\n" in text
    assert "    settings:\n      note: x\n    state: started\n" in text
    assert "  - name: cancelled\n" in text
    assert text.count("state: cancelled") == 1
    assert f"  - name: twin\n    id: {first_twin.id}\n" in text
    assert text.count("\n    id: ") == 1
    assert_round_trip(cli, folder)


def test_existing_manifests_are_kept_unless_forced(
    make_pipeline: Callable[[], Pipeline], cli: Callable[..., Ran], tmp_path: Path
) -> None:
    pipeline = make_pipeline()
    pipeline.create("one")
    folder = tmp_path / "out"
    assert cli("import", "--pipeline", pipeline.uuid, "--out-dir", str(folder)).code == 0
    manifest = folder / f"{pipeline.uuid}.yaml"
    manifest.write_text("# mine\n" + manifest.read_text(encoding="utf-8"), encoding="utf-8")
    pipeline.create("two")

    refused = cli("import", "--pipeline", pipeline.uuid, "--out-dir", str(folder))
    assert refused.code == 1
    assert f"Error: {manifest} already exists; pass --force to overwrite it" in refused.err
    assert manifest.read_text(encoding="utf-8").startswith("# mine\n")

    forced = cli("import", "--pipeline", pipeline.uuid, "--out-dir", str(folder), "--force")
    assert forced.code == 0
    assert forced.err.startswith("hint: the manifests have no schema modeline") and "Error" not in forced.err
    text = manifest.read_text(encoding="utf-8")
    assert "# mine" not in text
    assert "  - name: one\n" in text
    assert "  - name: two\n" in text
    assert_round_trip(cli, folder)


def test_a_pipeline_without_backfills_writes_nothing(
    make_pipeline: Callable[[], Pipeline], cli: Callable[..., Ran], tmp_path: Path
) -> None:
    pipeline = make_pipeline()
    ran = cli("import", "--pipeline", pipeline.uuid, "--out-dir", str(tmp_path / "out"))
    assert ran.code == 0
    assert "nothing to import: no backfills found in the selected pipelines" in ran.err
    assert not (tmp_path / "out").exists()


def test_filters_that_match_no_pipeline_are_an_error(cli: Callable[..., Ran], tmp_path: Path) -> None:
    ran = cli("import", "--pipeline", "hf_import_zzz_no_such_*", "--out-dir", str(tmp_path / "out"))
    assert ran.code == 1
    assert ran.err == "Error: no pipeline in Mage matches the --pipeline/--exclude filters\n"
    assert not (tmp_path / "out").exists()


def test_the_modeline_points_at_the_schema_in_the_repository(
    make_pipeline: Callable[[], Pipeline],
    cli: Callable[..., Ran],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make_pipeline()
    pipeline.create("one")
    (tmp_path / ".git").mkdir()
    (tmp_path / "schemas").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas" / "backfill-manifest.schema.json").write_text(cli("schema").out, encoding="utf-8")
    ran = cli("import", "--pipeline", pipeline.uuid)
    assert (ran.code, ran.err) == (0, "")
    text = (tmp_path / "backfills" / f"{pipeline.uuid}.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schemas/backfill-manifest.schema.json\n")
    assert_round_trip(cli, tmp_path / "backfills")


def test_an_unwritable_out_dir_is_an_error_without_a_traceback(
    make_pipeline: Callable[[], Pipeline], cli: Callable[..., Ran]
) -> None:
    pipeline = make_pipeline()
    pipeline.create("one")
    out_dir = Path("/proc/bfs-no-such-dir")  # not creatable, even by root
    ran = cli("import", "--pipeline", pipeline.uuid, "--out-dir", str(out_dir))
    assert ran.code == 1
    assert ran.err == (
        f"Error: cannot write {out_dir / (pipeline.uuid + '.yaml')}: No such file or directory; "
        "files written before this one: none\n"
    )
    assert "Traceback" not in ran.out + ran.err


# -- emulator only: rows real Mage must not be given (mage-api.md §6) ---------------------------------


def test_rows_a_manifest_cannot_hold_are_skipped_with_the_reason(
    quiet_emulator: MageServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = Api(quiet_emulator.url, login(quiet_emulator.url, "admin@admin.com", "admin"))
    good, poisoned = f"hf_import_{uuid.uuid4().hex[:8]}", f"hf_import_{uuid.uuid4().hex[:8]}"
    for name in (good, poisoned):
        raw("POST", "/api/pipelines", {"pipeline": {"name": name, "type": "python"}})
    window = {"start_datetime": "2024-01-01", "end_datetime": "2024-01-03", "interval_type": "day"}
    keeper = raw.create(good, name="keeper", interval_units=1, **window)
    units = raw.create(good, name="units-text", interval_units="abc", **window)
    backwards = raw.create(
        good,
        name="backwards",
        start_datetime="2024-02-01",
        end_datetime="2024-01-01",
        interval_type="day",
        interval_units=1,
    )
    half = raw.create(good, name="half", start_datetime="2024-01-01")
    long_name = raw.create(good, name="n" * 256, interval_units=1, **window)
    spoilt = raw.create(poisoned, name="spoilt", interval_units=1, **window)
    raw.put(spoilt["id"], interval_type="fortnight")  # stored, and every later read of the row fails
    monkeypatch.setenv("MAGE_URL", quiet_emulator.url)
    monkeypatch.setenv("MAGE_EMAIL", "admin@admin.com")
    monkeypatch.setenv("MAGE_PASSWORD", "admin")
    folder = tmp_path / "backfills"
    capsys.readouterr()

    code = main(["import", "--pipeline", "hf_import_*", "--out-dir", str(folder)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == f"wrote {folder / (good + '.yaml')} (1 backfill)\n"
    assert f"pipeline {poisoned}: Mage cannot list its backfills" in err
    assert f"backfill {units['id']} 'units-text': its interval_units 'abc' is not an integer >= 1" in err
    assert f"backfill {backwards['id']} 'backwards': end_datetime: is before start_datetime" in err
    assert f"backfill {half['id']} 'half': its schedule is incomplete in Mage (no end_datetime," in err
    assert f"backfill {long_name['id']} 'nnn" in err and "name: must be a name of 1 to 255" in err
    assert f"backfill {keeper['id']}" not in err
    assert not (folder / f"{poisoned}.yaml").exists()
    assert main(["validate", str(folder)]) == 0
    assert main(["fmt", "--check", str(folder)]) == 0
    assert main(["plan", "--detailed-exitcode", str(folder)]) == 0
