"""hive-migrate rollback --to-snapshot against real stacks: after a completed migration (also
with --backup ID), a damaged snapshot is refused with nothing touched, and a rollback killed at
each of its steps is completed by running it again. (The default, live rollback after a
completed migration: test_rollback_live.py.)"""
import os
import shutil
import subprocess

import pytest

from conftest import wait_until
from migrate_helpers import (EXIT_VERIFY_FAILED, UNIFIED, assert_split_back, container_state, describe,
                             ensure_unified_image, journal, new_stack, remove_unified, rollback, summary,
                             unified_healthy, up)


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    ensure_unified_image()
    s = new_stack(tmp_path_factory.mktemp("hu-rollback"))
    s.before = s.fingerprint()
    yield s
    remove_unified()
    s.down()


@pytest.fixture
def migrated(stack):
    """The stack migrated onto the unified container (rolled back again afterwards)."""
    res = up(stack)
    assert res.returncode == 0, describe(res)
    stack.last_up = summary(res)
    yield stack
    j = journal(stack)
    if j and j["status"] != "rolled-back":
        rollback(stack)
    remove_unified()
    if not stack.api_healthy():
        stack.start()
    for d in stack.mount_dir().parent.glob("postgres-agent.displaced-*"):
        shutil.rmtree(d)


def test_rollback_without_journal_is_not_found(engine, tmp_path):
    from migrate_helpers import HM
    from conftest import run
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    res = run([HM, "rollback", "--stack", tmp_path, "--yes"])
    assert res.returncode != 0
    assert "hive-migrate: error:" in res.stderr


def test_rollback_by_backup_id(migrated):
    s = migrated
    # a write on the unified container after the migration is not in the snapshot
    with s.connect() as conn:
        conn.execute("INSERT INTO hive.agent_metrics (agent_id, metric_name, value) "
                     "SELECT agent_id, metric_name, value FROM hive.agent_metrics LIMIT 1")
    assert s.fingerprint() != s.before
    res = rollback(s, "--backup", s.last_up["backup_id"])
    assert res.returncode == 0, describe(res)
    assert s.fingerprint() == s.before
    assert_split_back(s, s.before)
    assert journal(s)["status"] == "rolled-back"


def test_corrupted_archive_refused_and_nothing_touched(migrated):
    s = migrated
    archive = s.last_up["archive"]
    good = archive + ".good"
    shutil.copy2(archive, good)
    with open(archive, "r+b") as f:
        f.seek(os.path.getsize(archive) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    listing = sorted(os.listdir(s.data_dir()))
    res = rollback(s, "--to-snapshot")
    assert res.returncode == EXIT_VERIFY_FAILED, describe(res)
    assert "nothing was changed" in res.stderr
    # unified still serving, data directory untouched, no restore directory left
    assert container_state(UNIFIED) == "running"
    assert unified_healthy()
    assert sorted(os.listdir(s.data_dir())) == listing
    assert os.stat(s.data_dir()).st_uid == 1000
    assert not list(s.mount_dir().parent.glob("*.hive-restore"))
    assert journal(s)["status"] == "done"
    # with the good archive back, rollback works
    os.replace(good, archive)
    res = rollback(s, "--to-snapshot")
    assert res.returncode == 0, describe(res)
    assert_split_back(s, s.before)


@pytest.mark.parametrize("fault", ["rollback:after:extract", "rollback:mid:swap", "rollback:after:split-start"])
def test_killed_rollback_completes_on_rerun(migrated, fault):
    s = migrated
    res = rollback(s, "--to-snapshot", fault=fault)
    assert res.returncode == -9, describe(res)
    assert journal(s)["status"] == "rolling-back"
    # up refuses to go on while a rollback is unfinished
    blocked = up(s)
    assert blocked.returncode == 34, describe(blocked)
    again = rollback(s)
    assert again.returncode == 0, describe(again)
    assert_split_back(s, s.before)
