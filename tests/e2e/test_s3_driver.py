"""backup/storage's S3 driver against the real radosgw of the test bed (no mock): round trips,
a multipart object of a few hundred MB with bounded memory, ranges across part boundaries,
listing with continuation, removal in batches, a killed upload found and aborted, a failed
upload aborted, exclusive writes, the cross-host lock (including a holder paused past its
lease), virtual-host addressing, credential sources, and one clear line for each of wrong
credentials, a missing bucket, a skewed clock and an unreachable endpoint.

Driven through build/tests/hm-storage-tool (tests/objstore/storage_tool.c); each test has its
own bucket. Port 29080 (radosgw), container ho-ceph.
"""
import hashlib
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import wait_until
from s3_helpers import Tool, bucket, clean_env, kill9, objstore  # noqa: F401 (fixtures)

MiB = 1024 * 1024


def one_error_line(r):
    """The tool failed with exactly one line, in hive-migrate's format; returns it."""
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line, got: {r.stderr!r}"
    assert lines[0].startswith("hive-migrate: error: "), lines[0]
    return lines[0]


def test_small_round_trip_and_names(bucket):
    _, t = bucket
    data = bytes(range(256)) * 10 + b"\0end"
    name = "dir/a b+c \u00fc%41.bin"         # space, plus, non-ASCII, a literal %41
    r = t.ok("put", name, input=data, text=False)
    sha, size, etag = r.stdout.decode().split()
    assert sha == hashlib.sha256(data).hexdigest() and int(size) == len(data)
    assert etag == hashlib.md5(data).hexdigest()          # one PUT: the ETag is the MD5
    got = t.ok("get", name, text=False).stdout
    assert got == data
    st = t.ok("stat", name).stdout.split("\t")
    assert st[0] == name and int(st[1]) == len(data) and st[2] == etag
    # Listed under its exact name (keys come back url-encoded and are decoded).
    assert t.ok("ls", "dir").stdout.splitlines() == [f"a b+c \u00fc%41.bin\t{len(data)}\t{etag}"]
    assert t.ok("ls").stdout.splitlines() == ["dir/"]
    # An empty object, and overwriting an object, are whole objects too.
    t.ok("put", "empty", input=b"", text=False)
    assert t.ok("get", "empty", text=False).stdout == b""
    t.ok("put", name, input=b"second", text=False)
    assert t.ok("get", name, text=False).stdout == b"second"
    # A missing object: its own exit code (41), one line.
    r = t("get", "dir/missing")
    assert r.returncode == 41 and "no such object" in one_error_line(r)


def test_multipart_bounded_memory(bucket):
    _, t = bucket
    size = 300 * 1000 * 1000
    r = t.ok("gen", "big", str(size), opts=["--rss", "--stats"])
    sha, got_size, etag = r.stdout.split()
    assert int(got_size) == size
    parts = -(-size // (5 * MiB))                                # 5 MiB parts: 58
    assert etag.endswith(f"-{parts}"), etag                     # a multipart object
    peak = int(re.search(r"peak_rss_kb (\d+)", r.stderr).group(1))
    flight = int(re.search(r"max_in_flight (\d+)", r.stderr).group(1))
    # (parallel + 1) part buffers of 5 MiB plus the libraries: far from the object's size.
    assert peak < 64 * 1024, f"upload peak RSS {peak} kB"
    assert flight == 2, f"{flight} parts in flight (parallel is 2)"
    # Read back whole, streaming, with memory as small.
    r = t.ok("sha", "big", opts=["--rss"])
    rsha, rlen, total = r.stdout.split()
    assert (rsha, int(rlen), int(total)) == (sha, size, size)
    assert int(re.search(r"peak_rss_kb (\d+)", r.stderr).group(1)) < 32 * 1024
    # Without a size hint the part size doubles every 2000 parts (here every 2): 5, 5, 10 MiB
    # for 20 MiB, so that 10000 parts hold about 303 GiB; the object reads back whole.
    data = os.urandom(20 * MiB)
    r = t.ok("put", "grown", input=data, opts=["--grow-every", "2"], text=False)
    getag = r.stdout.split()[2].decode()
    assert getag.endswith("-3"), getag
    assert t.ok("sha", "grown").stdout.split()[0] == hashlib.sha256(data).hexdigest()
    # A size hint larger than 10000 parts of 5 MiB makes the parts larger, not the upload fail.
    r = t.ok("gen", "hinted", str(12 * MiB), opts=["--size-hint", str(200 * 1000 * MiB)])
    assert "-" not in r.stdout.split()[2]      # parts of 30 MiB: 12 MiB fit one PUT (at 5 MiB: "-3")


def test_ranges_across_part_boundaries(bucket, tmp_path):
    _, t = bucket
    data = os.urandom(12 * MiB + 123)
    t.ok("put", "obj", input=data, opts=["--part-size", "5"], text=False)   # parts: 5, 5, 2 MiB
    assert t.ok("stat", "obj").stdout.split("\t")[2].endswith("-3")
    for off, length in [(5 * MiB - 10, 20), (10 * MiB - 1, 2), (0, 1), (5 * MiB, 5 * MiB),
                        (len(data) - 7, 7), (3, len(data) - 3)]:
        got = t.ok("get", "obj", str(off), str(length), text=False).stdout
        assert got == data[off:off + length], (off, length)
    assert t.ok("get", "obj", str(len(data) - 5), text=False).stdout == data[-5:]   # to the end
    assert t.ok("get", "obj", str(len(data)), text=False).stdout == b""             # empty tail
    r = t("get", "obj", str(len(data) - 5), "6")                                    # past the end
    assert r.returncode != 0 and "only" in one_error_line(r)


def test_list_with_continuation_and_batched_remove(bucket):
    _, t = bucket
    t.ok("genmany", "l", "1003")                    # more than one multi-delete (1000 keys)
    t.ok("genmany", "l/sub", "5")
    t.ok("genmany", "other", "2")
    r = t.ok("ls", "l", opts=["--list-page", "100", "--stats"])
    lines = r.stdout.splitlines()
    assert len(lines) == 1004 and len(set(lines)) == 1004 and "sub/" in lines
    assert int(re.search(r"requests (\d+)", r.stderr).group(1)) >= 11   # 1004 entries, 100 a page
    r = t.ok("ls", "l", opts=["--list-page", "7", "--recursive"])
    names = [l.split("\t")[0] for l in r.stdout.splitlines()]
    assert len(names) == 1008 and len(set(names)) == 1008
    assert "00000" in names and "01002" in names and "sub/00004" in names
    t.ok("rmdir", "l")
    assert t.ok("ls", "l", opts=["--recursive"]).stdout == ""
    assert len(t.ok("ls", "other").stdout.splitlines()) == 2      # the rest untouched
    t.ok("rm", "other/00000", "other/never-existed")
    assert t.ok("ls", "other").stdout.splitlines()[0].startswith("00001\t")


def test_killed_upload_is_listed_and_aborted_by_sweep(bucket):
    _, t = bucket
    t.ok("put", "repo/keep", input="kept")
    # An upload that has sent parts and then hangs (its source stalls), killed with -9.
    p = t.popen("gen", "repo/id1/backup.tar", str(100 * MiB), opts=["--stall-after", str(30 * MiB)])
    try:
        wait_until(lambda: t.partials("repo") == ["repo/id1/backup.tar"], 60,
                   what="the upload to appear in ListMultipartUploads")
        wait_until(lambda: p.stderr.readline().startswith("stalled"), 60, what="the producer to stall")
    finally:
        kill9(p)
    # Never an object, never listed: the multipart upload was not completed.
    assert t.ok("ls", "repo", opts=["--recursive"]).stdout.splitlines() == ["keep\t4\t" +
                                                                            hashlib.md5(b"kept").hexdigest()]
    assert t("stat", "repo/id1/backup.tar").returncode == 41
    # The leftover is found (ListMultipartUploads) and aborted.
    assert t.partials("repo") == ["repo/id1/backup.tar"]
    r = t.ok("sweep", "repo")
    assert "partials 1" in r.stderr
    assert t.partials("repo") == []
    assert t.ok("get", "repo/keep").stdout == "kept"


def test_failed_upload_is_aborted(bucket):
    _, t = bucket
    r = t("gen", "failing", str(40 * MiB), opts=["--fail-after", str(20 * MiB)])
    assert r.returncode == 43 and "gave up" in one_error_line(r)
    assert t.partials() == []                        # aborted, not left behind
    assert t("stat", "failing").returncode == 41


def test_exclusive_write(bucket):
    _, t = bucket
    t.ok("put", "meta", input="one", opts=["--exclusive"])
    r = t("put", "meta", input="two", opts=["--exclusive"])
    assert r.returncode == 20 and "exists already" in one_error_line(r)
    assert t.ok("get", "meta").stdout == "one"


def test_lock_across_processes(bucket):
    _, t = bucket
    holder = t.popen("lockcheck", "repo/.lock", "backup on host A", "60")
    try:
        assert holder.stdout.readline().strip() == "locked"
        r = t("lock", "repo/.lock", "backup on host B")
        assert r.returncode == 33
        line = one_error_line(r)
        assert "backup on host A" in line and f"pid {holder.pid}" in line
    finally:
        kill9(holder)
    # Killed without releasing: the lease stays until it expires by the server's clock.
    r = t("lock", "repo/.lock", "backup on host B")
    assert r.returncode == 33 and "expires in" in one_error_line(r)


def test_lock_lease_expiry_and_takeover(bucket):
    _, t = bucket
    ttl = ["--lock-ttl", "10"]
    # A holder that renews its lease, then is paused (SIGSTOP) for longer than the lease.
    holder = t.popen("lockcheck", "repo/.lock", "stalled run", "120", opts=ttl)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert t("lock", "repo/.lock", "other run", opts=ttl).returncode == 33
        holder.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        wait_until(lambda: t("lock", "repo/.lock", "other run", "0", opts=ttl).returncode == 0, 60,
                   interval=1, what="the paused holder's lease to expire")
        assert time.monotonic() - start >= 5          # not before most of the lease has passed
        taker = t.popen("lock", "repo/.lock", "taker", "30", opts=ttl)
        assert taker.stdout.readline().strip() == "locked"
        # The paused run wakes up: its next renewal finds the lock taken, and it stops.
        holder.send_signal(signal.SIGCONT)
        out, err = holder.communicate(timeout=30)
        assert holder.returncode == 33 and "lost the lock" in err, err
        # ... and it did not delete the new holder's lock on its way out.
        assert t("lock", "repo/.lock", "third", opts=ttl).returncode == 33
        kill9(taker)
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGCONT)
            kill9(holder)


def test_virtual_host_addressing(objstore, bucket, tmp_path):
    name, _ = bucket
    # radosgw is set up with `rgw dns name = localhost`; curl resolves NAME.localhost locally.
    vt = Tool(objstore, f"s3://{name}/vh", tmp_path, endpoint=objstore.endpoint.replace("127.0.0.1", "localhost"))
    vt.ok("put", "x", input="virtual", opts=["--style", "host"])
    assert vt.ok("get", "x", opts=["--style", "host"]).stdout == "virtual"
    r = vt("get", "x", opts=["--style", "host", "--endpoint", objstore.endpoint])
    assert r.returncode == 2 or "IP address" in r.stderr


def test_credential_sources(objstore, bucket, tmp_path):
    name, t = bucket
    t.ok("put", "c", input="creds")
    # The environment.
    env = clean_env(t.home)
    env.update(AWS_ACCESS_KEY_ID=objstore.access_key, AWS_SECRET_ACCESS_KEY=objstore.secret_key)
    assert t("get", "c", creds=False, env=env).stdout == "creds"
    # ~/.aws/credentials with AWS_PROFILE.
    aws = t.home / ".aws"
    aws.mkdir()
    cred = aws / "credentials"
    cred.write_text(f"[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n"
                    f"[backup]\naws_access_key_id = {objstore.access_key}\n"
                    f"aws_secret_access_key = {objstore.secret_key}\n")
    cred.chmod(0o600)
    env = clean_env(t.home)
    env["AWS_PROFILE"] = "backup"
    assert t("get", "c", creds=False, env=env).stdout == "creds"
    # Readable by others: refused, and the secret is never printed.
    cred.chmod(0o644)
    r = t("get", "c", creds=False, env=env)
    assert r.returncode == 22 and "chmod 600" in one_error_line(r)
    assert objstore.secret_key not in r.stderr + r.stdout
    # None at all.
    cred.unlink()
    r = t("get", "c", creds=False)
    assert r.returncode == 20 and "no S3 credentials" in one_error_line(r)


def test_errors_are_one_clear_line(objstore, bucket, tmp_path):
    name, t = bucket
    bad = tmp_path / "bad-secret"
    bad.write_text(f"[default]\naws_access_key_id = {objstore.access_key}\naws_secret_access_key = NotTheSecret\n")
    bad.chmod(0o600)
    unknown = tmp_path / "unknown-key"
    unknown.write_text("[default]\naws_access_key_id = HONOSUCHKEY\naws_secret_access_key = whatever\n")
    unknown.chmod(0o600)
    home = tmp_path

    def tool(location=f"s3://{name}", endpoint=None):
        return Tool(objstore, location, home, endpoint=endpoint)

    cases = [
        (tool(), ["--credentials-file", bad], 22, "SignatureDoesNotMatch"),
        (tool(), ["--credentials-file", unknown], 22, "InvalidAccessKeyId"),
        (tool("s3://ho-no-such-bucket"), [], 20, "does not exist"),
        (tool(), ["--clock-offset", "-3600"], 24, "RequestTimeTooSkewed"),
        (tool(endpoint="http://127.0.0.1:29099"), ["--attempts", "2"], 24, "cannot reach"),
    ]
    for tl, opts, code, words in cases:
        creds = not any(str(o).startswith(str(tmp_path)) for o in opts)
        r = tl("ls", opts=[str(o) for o in opts], creds=creds)
        line = one_error_line(r)
        assert r.returncode == code, f"{words}: exit {r.returncode}: {line}"
        assert words in line, line
        assert objstore.secret_key not in r.stderr and "NotTheSecret" not in r.stderr
    # The skew is measured, not guessed; the unreachable endpoint was retried.
    r = tool()("ls", opts=["--clock-offset", "-3600"])
    assert re.search(r"clock is -3[56]\d\d s off", r.stderr), r.stderr
    r = tool(endpoint="http://127.0.0.1:29099")("ls", opts=["--attempts", "3"])
    assert "after 3 attempts" in r.stderr


@pytest.fixture
def proxy_for(objstore):
    """Factory: a FaultyProxy in front of radosgw with a plan; closed afterwards."""
    from s3_helpers import FaultyProxy
    made = []
    port = int(objstore.endpoint.rsplit(":", 1)[1])

    def make(plan, default="pass"):
        p = FaultyProxy(port, plan, port=29081 + len(made), default=default)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def stats(r):
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", r.stderr)}


def test_retries_on_5xx_resets_and_stalls(bucket, proxy_for):
    name, direct = bucket
    # Upload through a network that answers 503 once, resets a connection and stalls one.
    p = proxy_for(["503", "reset", "pass", "stall"])
    t = Tool(direct.store, f"s3://{name}", direct.home, endpoint=p.endpoint)
    r = t.ok("gen", "obj", str(20 * MiB), opts=["--stats", "--stall-timeout", "2", "--part-size", "5"])
    sha = r.stdout.split()[0]
    assert stats(r)["retries"] >= 3, r.stderr
    assert direct.ok("sha", "obj").stdout.split()[0] == sha       # the server has the right bytes
    # A download cut in the middle resumes from the next byte (Range + If-Match).
    p = proxy_for(["cut:3000000", "cut:9000000"])
    t = Tool(direct.store, f"s3://{name}", direct.home, endpoint=p.endpoint)
    r = t.ok("sha", "obj", opts=["--stats"])
    assert r.stdout.split()[0] == sha and int(r.stdout.split()[1]) == 20 * MiB
    assert stats(r)["retries"] >= 2, r.stderr


def test_clear_error_after_the_last_attempt(bucket, proxy_for):
    name, direct = bucket
    p = proxy_for([], default="503")
    t = Tool(direct.store, f"s3://{name}", direct.home, endpoint=p.endpoint)
    r = t("ls", opts=["--attempts", "3"])
    line = one_error_line(r)
    assert r.returncode == 24 and "HTTP 503 SlowDown" in line and "after 3 attempts" in line, line
    assert p.accepted == 3
    # An upload whose server goes away for good after 12 MB fails with one line; nothing is
    # visible, and the upload it had started is either aborted or found by sweep.
    p = proxy_for(["cutup:12000000"], default="reset")
    t = Tool(direct.store, f"s3://{name}", direct.home, endpoint=p.endpoint)
    r = t("gen", "gone", str(40 * MiB), opts=["--attempts", "2", "--part-size", "5", "--parallel", "1"])
    line = one_error_line(r)
    assert r.returncode == 24 and "cannot reach" in line and "after 2 attempts" in line, line
    assert direct("stat", "gone").returncode == 41
    assert direct.partials() in ([], ["gone"])
    direct.ok("sweep")
    assert direct.partials() == []
