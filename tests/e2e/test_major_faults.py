"""Failures of `up` across PostgreSQL majors (15 -> 17) on real containers: a failure
injected at every new step (HIVE_MIGRATE_FAIL) rolls back by itself, and kill -9 at a step
(HIVE_MIGRATE_FAULT) followed by a rerun resumes it (then either completes or, with a later
failure, rolls back). Every time the split stack must come back on PostgreSQL 15, healthy,
with exactly its data, and nothing may be left beside the data directory."""
import pytest

from major_helpers import (EXIT_ROLLED_BACK, all_fingerprint, assert_split_back, journal,
                           new_building, new_stack, old_kept, remove_unified, snapshot_tree, tree, up)

POINTS = ["major:after:api-stop", "major:during:dump", "major:after:dump", "major:after:old-stop",
          "major:after:snapshot", "major:after:init", "major:during:restore", "major:after:restore",
          "major:mid:cutover", "major:after:cutover", "major:after:unified-start",
          "major:after:verify"]


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    s = new_stack(tmp_path_factory.mktemp("hj-faults"), name="hj-faults")
    s.before = all_fingerprint(s)
    yield s
    remove_unified()
    s.down()


@pytest.mark.parametrize("point", POINTS)
def test_failure_rolls_back(stack, point):
    res = up(stack, env={"HIVE_MIGRATE_FAIL": point})
    assert res.returncode == EXIT_ROLLED_BACK, res.stderr[-4000:]
    assert f"injected failure at {point}" in res.stderr
    assert "rolled back" in res.stderr
    assert_split_back(stack, stack.before)
    assert not (stack.path / ".hive-migrate" / "dump-agent").exists()


def test_kill_during_restore_resume_then_rollback(stack):
    res = up(stack, env={"HIVE_MIGRATE_FAULT": "major:during:restore"})
    assert res.returncode == -9, res.stderr[-3000:]
    j = journal(stack)
    assert j["status"] == "in-progress" and j["major_step"] == "snapshotted", j
    assert new_building(stack).exists()          # the half-restored cluster
    assert stack.pg_version() == "15"            # the old directory is still in its place
    # the rerun resumes: the half-restored cluster is discarded and restored again; a
    # failure after the cut-over then rolls the whole run back
    res = up(stack, env={"HIVE_MIGRATE_FAIL": "major:after:cutover"})
    assert res.returncode == EXIT_ROLLED_BACK, res.stderr[-4000:]
    assert "resuming" in res.stderr
    assert_split_back(stack, stack.before)


def test_kill_mid_cutover_resume_then_rollback(stack):
    res = up(stack, env={"HIVE_MIGRATE_FAULT": "major:mid:cutover"})
    assert res.returncode == -9, res.stderr[-3000:]
    assert old_kept(stack).exists() and not stack.mount_dir().exists()
    res = up(stack, env={"HIVE_MIGRATE_FAIL": "major:after:unified-start"})
    assert res.returncode == EXIT_ROLLED_BACK, res.stderr[-4000:]
    assert_split_back(stack, stack.before)


def test_kill_during_dump_then_rerun_completes(stack):
    res = up(stack, env={"HIVE_MIGRATE_FAULT": "major:during:dump"})
    assert res.returncode == -9, res.stderr[-3000:]
    j = journal(stack)
    assert j["major_step"] == "api-stopped" and j["status"] == "in-progress", j
    assert not stack.api_healthy()               # the API stays stopped: no writes
    res = up(stack)
    assert res.returncode == 0, res.stderr[-4000:]
    j = journal(stack)
    assert j["status"] == "done"
    assert stack.pg_version() == "17"
    assert all_fingerprint(stack) == stack.before
    assert tree(old_kept(stack)) == snapshot_tree(j["archive"])
