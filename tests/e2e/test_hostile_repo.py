"""Hostile repositories and restore targets (issue #8, findings 4, 5, 9, 10, 11, 12): a
repository must be a directory of the running user that nobody else can write, and nothing
inside it is followed through a symlink; restore builds its tree in a work directory made
safely next to the target (a less privileged user who can write the target's parent cannot
redirect it); restore and prune exclude each other; prune never deletes what it cannot
parse; limits are reported, not silently applied. No server is needed (one test runs
`docker compose config` through `rollback`)."""
import fcntl
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

import hostile_repo as h
from conftest import ROOT, wait_until
from test_hostile import HM, EXIT_VERIFY_FAILED, hm

EXIT_PERMISSION = 22
EXIT_LOCKED = 33
NOBODY = 65534


@pytest.fixture
def repo(tmp_path):
    return h.make_repo(tmp_path / "repo")


def victim_dir(tmp_path):
    v = tmp_path / "victim"
    v.mkdir()
    (v / "keep-me").write_text("precious\n")
    return v


# --- finding 4: repository symlinks, owner and mode -------------------------------------------
@pytest.mark.parametrize("cmd", [["backups", "prune", "--keep-last", "1", "--dry-run"],
                                 ["backups", "verify", "--all"]])
def test_tmp_symlink_is_never_followed(repo, tmp_path, cmd):
    v = victim_dir(tmp_path)
    h.online_backup(repo)
    os.symlink(v, repo / ".tmp")
    r = hm(*cmd, "--repo", repo)
    assert r.returncode == EXIT_PERMISSION, r.stdout + r.stderr
    assert ".tmp" in r.stderr and "symlink" in r.stderr
    assert (v / "keep-me").read_text() == "precious\n"


def test_tmp_symlink_refused_by_backup(repo, tmp_path):
    v = victim_dir(tmp_path)
    os.symlink(v, repo / ".tmp")
    data = tmp_path / "pgdata"
    data.mkdir()
    r = hm("backup", "--offline", "--data-dir", data, "--repo", repo)
    assert r.returncode == EXIT_PERMISSION, r.stderr
    assert (v / "keep-me").read_text() == "precious\n"


def test_lock_symlink_is_never_followed(repo, tmp_path):
    v = victim_dir(tmp_path)
    h.online_backup(repo)
    os.symlink(v / "keep-me", repo / ".lock")
    r = hm("backups", "verify", "--all", "--repo", repo)
    assert r.returncode == EXIT_PERMISSION, r.stderr
    assert ".lock" in r.stderr
    assert (v / "keep-me").read_text() == "precious\n"


@pytest.mark.parametrize("change", ["group-writable", "other-writable", "other-owner", "symlinked-backup"])
def test_unsafe_repository_refused(repo, tmp_path, change):
    bid = h.online_backup(repo)
    if change == "group-writable":
        os.chmod(repo, 0o770)
    elif change == "other-writable":
        os.chmod(repo, 0o707)
    elif change == "other-owner":
        os.chown(repo, NOBODY, NOBODY)
    if change == "symlinked-backup":
        # a backup directory that is a symlink to one elsewhere: never listed or followed
        os.rename(repo / bid, tmp_path / "elsewhere")
        os.symlink(tmp_path / "elsewhere", repo / bid)
        r = hm("backups", "list", "--repo", repo)
        assert r.returncode == 0 and bid not in r.stdout, r.stdout
        return
    for cmd in (["backups", "list"], ["status"], ["backups", "verify", "--all"],
                ["backups", "prune", "--keep-last", "1"]):
        r = hm(*cmd, "--repo", repo)
        assert r.returncode == EXIT_PERMISSION, (cmd, r.stdout, r.stderr)
        assert r.stderr.count("hive-migrate: error:") == 1 and "hint:" in r.stderr, r.stderr
    assert (repo / bid / "backup.tar").exists()


def test_state_dir_must_be_private(tmp_path, engine):
    """STACK/.hive-migrate holds the journal and the lock: group/other-writable is refused."""
    stack = tmp_path / "hh-stack"
    subprocess.run([ROOT / "fixtures" / "split" / "new-stack.sh", stack], check=True,
                   capture_output=True)
    (stack / ".hive-migrate").mkdir(mode=0o777)
    os.chmod(stack / ".hive-migrate", 0o777)
    r = hm("rollback", "--stack", stack, "--profile", "agent", "--yes", timeout=120)
    assert r.returncode == EXIT_PERMISSION, r.stdout + r.stderr
    assert ".hive-migrate" in r.stderr


# --- finding 5: the restore work directory -------------------------------------------------
def attacker(parent):
    """A process of uid 65534 (who can write parent, as a container's volume owner can):
    each time a "*.restoring-*" work directory appears, it is moved away and replaced by a
    symlink to a directory of the attacker's ("evil")."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    pid = os.fork()
    if pid:
        os.close(fd)
        return pid
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        deadline = time.monotonic() + 60
        n = 0
        while time.monotonic() < deadline:  # until killed
            for name in os.listdir(fd):
                if ".restoring-" in name:
                    try:
                        if stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode):
                            continue
                        os.rename(name, "stolen-%d" % n, src_dir_fd=fd, dst_dir_fd=fd)
                        os.symlink("evil", name, dir_fd=fd)
                        n += 1
                    except OSError:
                        pass
    finally:
        os._exit(0)


def many_files_items(n=1000):
    items = h.pgdata_items()
    items.append(h.offline_entry("base", "dir"))
    items += [h.offline_entry("base/%05d" % i, "file", b"x" * 64) for i in range(n)]
    return items


def many_files_entries(n=1000):
    ents = h.pgdata_entries() + [h.Entry("base", "d")]
    ents += [h.Entry("base/%05d" % i, data=b"x" * 64) for i in range(n)]
    return ents


@pytest.mark.parametrize("kind", ["offline", "online"])
def test_work_directory_cannot_be_redirected(repo, tmp_path, kind):
    parent = tmp_path / "volume"
    parent.mkdir()
    os.chown(parent, NOBODY, NOBODY)  # writable by the attacker, as a container's volume is
    evil = parent / "evil"
    evil.mkdir()
    os.chown(evil, NOBODY, NOBODY)
    os.chmod(evil, 0o777)
    if kind == "offline":
        bid = h.offline_backup(repo, many_files_items())
    else:
        bid = h.online_backup(repo, many_files_entries())
    pid = attacker(parent)
    try:
        for _ in range(2):
            target = parent / "pgdata"
            r = hm("backups", "restore", bid, "--repo", repo, "--to", target)
            # whoever won the race, root wrote nothing into the attacker's directory
            assert os.listdir(evil) == [], (r.stderr, os.listdir(evil)[:5])
            if r.returncode == 0:
                assert not os.path.islink(target) and target.is_dir()
                assert (target / "PG_VERSION").read_bytes() == b"17\n"
                subprocess.run(["rm", "-rf", target], check=True)
            else:
                assert "hive-migrate: error:" in r.stderr
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not any(os.lstat(p).st_uid == 0 for p in evil.rglob("*"))


def test_work_directory_planted_symlink_refused(repo, tmp_path):
    """A symlink already at the work directory's name is never written through."""
    v = victim_dir(tmp_path)
    bid = h.offline_backup(repo, h.pgdata_items())
    target = tmp_path / "t" / "pgdata"
    target.parent.mkdir()
    last = int(open("/proc/sys/kernel/ns_last_pid").read())
    for p in range(last + 1, last + 200):
        os.symlink(v, target.parent / ("pgdata.restoring-%d" % p))
    r = hm("backups", "restore", bid, "--repo", repo, "--to", target)
    assert sorted(os.listdir(v)) == ["keep-me"]
    if r.returncode == 0:
        assert target.is_dir() and not target.is_symlink()


# --- finding 10: restore takes the lock; stale work directories --------------------------------
def test_restore_holds_the_lock_against_prune(repo, tmp_path):
    old = h.online_backup(repo, n=0)
    new = h.online_backup(repo, n=1)
    assert hm("backups", "verify", "--all", "--repo", repo).returncode == 0
    env = dict(os.environ, HIVE_RESTORE_FAULT="after-lock")
    p = subprocess.Popen([HM, "backups", "restore", old, "--repo", str(repo), "--to",
                          str(tmp_path / "t")], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)

    def stopped():
        with open("/proc/%d/stat" % p.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    try:
        wait_until(stopped, 20, what="restore paused after taking the lock")
        r = hm("backups", "prune", "--keep-last", "1", "--repo", repo)
        assert r.returncode == EXIT_LOCKED, r.stdout + r.stderr
        assert "restore" in r.stderr
        assert (repo / old / "backup.tar").exists()
    finally:
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert (tmp_path / "t" / "PG_VERSION").read_bytes() == b"17\n"
    r = hm("backups", "prune", "--keep-last", "1", "--repo", repo)
    assert r.returncode == 0 and not (repo / old).exists() and (repo / new).exists()


def test_stale_work_directory_is_removed(repo, tmp_path):
    bid = h.online_backup(repo)
    target = tmp_path / "t" / "pgdata"
    target.parent.mkdir()
    dead = 4194000
    while os.path.exists("/proc/%d" % dead):
        dead += 1
    stale = target.parent / ("pgdata.restoring-%d" % dead)
    (stale / "base").mkdir(parents=True)
    (stale / "base" / "f").write_text("left by a killed restore\n")
    live = target.parent / "pgdata.restoring-1"  # pid 1 is alive: never touched
    live.mkdir()
    foreign = target.parent / ("pgdata.restoring-%d" % (dead + 1))
    foreign.mkdir()
    os.chown(foreign, NOBODY, NOBODY)  # not ours: never touched
    r = hm("backups", "restore", bid, "--repo", repo, "--to", target)
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    assert "removed" in r.stderr and stale.name in r.stderr
    assert live.exists() and foreign.exists()


# --- finding 9: broken entries are reported, never pruned, never "latest" ------------------
def test_prune_never_deletes_what_it_cannot_parse(repo):
    good = h.online_backup(repo, n=0)
    assert hm("backups", "verify", good, "--repo", repo).returncode == 0
    broken, _ = h.new_id(5)
    (repo / broken).mkdir()
    (repo / broken / "backup.json").write_text("{ not json")
    (repo / broken / "backup.tar").write_bytes(b"important")
    other = repo / "notes"
    other.mkdir()
    (other / "backup.json").write_text('{"format": "something else"}')
    r = hm("backups", "show", "latest", "--repo", repo)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == good, r.stdout + r.stderr
    r = hm("backups", "prune", "--keep-last", "1", "--repo", repo)
    assert (repo / broken / "backup.tar").read_bytes() == b"important"
    assert (other / "backup.json").exists() and (repo / good).exists()
    assert broken in r.stdout + r.stderr and "notes" in r.stdout + r.stderr
    lst = hm("backups", "list", "--repo", repo)
    assert "BROKEN" in lst.stdout and broken in lst.stdout, lst.stdout


def test_backup_json_over_cap_is_reported_not_hidden(repo):
    bid = h.online_backup(repo)
    p = repo / bid / "backup.json"
    text = p.read_text()
    p.write_text(text[:-1] + " " * (1 << 20) + text[-1:])
    lst = hm("backups", "list", "--repo", repo)
    assert bid in lst.stdout and "BROKEN" in lst.stdout, lst.stdout + lst.stderr
    v = hm("backups", "verify", "--all", "--repo", repo)
    assert v.returncode == EXIT_VERIFY_FAILED and "larger than" in v.stderr, v.stderr


# --- finding 12: --owner for offline restores, the password file of `up` -------------------------
def test_owner_applies_to_every_entry_of_an_offline_restore(repo, tmp_path):
    items = h.pgdata_items(uid=999, gid=999) + [h.offline_entry("link", "symlink", target="PG_VERSION",
                                                                uid=999, gid=999)]
    bid = h.offline_backup(repo, items)
    target = tmp_path / "t"
    r = hm("backups", "restore", bid, "--repo", repo, "--to", target, "--owner", "4321:4322")
    assert r.returncode == 0, r.stderr
    owners = {(os.lstat(p).st_uid, os.lstat(p).st_gid) for p in [target, *target.rglob("*")]}
    assert owners == {(4321, 4322)}, owners


def test_up_backup_password_file_mode_is_checked(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    os.chmod(pw, 0o644)
    r = hm("up", "--stack", tmp_path / "nostack", "--profile", "agent", "--backup-password-file", pw)
    assert r.returncode == EXIT_PERMISSION, r.stdout + r.stderr
    assert "readable by others" in r.stderr and "chmod 600" in r.stderr
    assert "secret" not in r.stdout + r.stderr
