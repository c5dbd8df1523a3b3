#!/usr/bin/env bash
# Benchmark of the unified container (docker/), not part of `make test`:
#  - time from `compose up` to healthy (fresh directory with initdb, then warm restarts), and
#    `docker stop -t 30` duration; the split stack's time to healthy in the same run
#  - health endpoint latency p50/p99 over 1000 requests (keep-alive, and new connection each)
#  - memory of the whole container (cgroup memory.stat) idle, after load, after searches, and
#    the searches again with the container capped at 512 MB and 256 MB (podman update)
#  - knowledge search through the API at 100k x 384-d random vectors (COPY, HNSW build,
#    200 searches k=10): p50/p95/p99
# Containers hd-bench-*, ports 21886 (unified API), 21532 (unified PG), 21887/21533 (split).
# Results: printed as markdown and saved to tests/bench/results/unified-<time>.json.
# Usage: tests/bench/unified.sh [ROWS]     (default 100000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
"$ROOT/tests/engine-setup.sh" >/dev/null
"$ROOT/docker/build-image.sh"
[ -x "$ROOT/fixtures/split/build-images.sh" ] && "$ROOT/fixtures/split/build-images.sh" 17 api >/dev/null || true
mkdir -p "$ROOT/tests/bench/results"
exec /usr/bin/python3 - "$ROOT" "${1:-100000}" <<'PY'
import http.client, json, os, random, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT, ROWS = Path(sys.argv[1]), int(sys.argv[2])
NAME, PORT, PGPORT = "hd-bench-unified", 21886, 21532
PW = "bench-" + os.urandom(6).hex()
work = Path(tempfile.mkdtemp(prefix="hd-bench-"))
data = work / "data"; data.mkdir(); os.chown(data, 1000, 1000)
TEMPLATE = ROOT / "docker/templates/agent.yml"
ENV = dict(os.environ, HIVE_DATA_DIR=str(data), HIVE_DB_PASSWORD=PW, HIVE_API_PORT=str(PORT),
           HIVE_PG_PORT=str(PGPORT), HIVE_CONTAINER_NAME=NAME)
res = {"rows": ROWS, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

def sh(*cmd, check=True, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {cmd}\n{r.stdout}\n{r.stderr}")
    return r

def compose(*args, env=ENV, check=True):
    return sh("docker", "compose", "-f", TEMPLATE, "-p", NAME, *args, env=env, check=check)

def healthy(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/api/v1/health"); r = c.getresponse(); r.read(); c.close()
        return r.status == 200
    except OSError:
        return False

def until_healthy(port, t0, limit=180):
    while time.monotonic() - t0 < limit:
        if healthy(port):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit(f"not healthy on {port} within {limit}s")

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def ms(xs):
    return {"p50": round(pct(xs, 50) * 1000, 2), "p95": round(pct(xs, 95) * 1000, 2),
            "p99": round(pct(xs, 99) * 1000, 2), "max": round(max(xs) * 1000, 2), "n": len(xs)}

def mem(name):
    """Memory of the whole container (MB) from its cgroup v1 memory.stat: usage (what podman
    stats shows; includes page cache), rss (anonymous), shmem (shared_buffers in use, DSM),
    file cache, working set (usage - inactive_file, as Docker/kubelet count it), peak."""
    pid = sh("podman", "inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    cg = [l.split(":", 2)[2] for l in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
          if l.split(":")[1] == "memory"]
    base = Path("/sys/fs/cgroup/memory" + cg[0]) if cg else None
    if not base or not base.exists():  # cgroup v2
        base = Path("/sys/fs/cgroup" + Path(f"/proc/{pid}/cgroup").read_text().split("::")[-1].strip())
        cur = int((base / "memory.current").read_text())
        return {"usage_mb": round(cur / 2**20, 1), "podman": sh("podman", "stats", "--no-stream",
                "--format", "{{.MemUsage}}", name).stdout.strip()}
    st = dict(l.split() for l in (base / "memory.stat").read_text().splitlines())
    usage = int((base / "memory.usage_in_bytes").read_text())
    mb = lambda b: round(int(b) / 2**20, 1)
    return {"usage_mb": mb(usage), "rss_mb": mb(st["total_rss"]), "shmem_mb": mb(st["total_shmem"]),
            "file_cache_mb": mb(int(st["total_cache"]) - int(st["total_shmem"])),
            "working_set_mb": mb(usage - int(st["total_inactive_file"])),
            "peak_mb": mb((base / "memory.max_usage_in_bytes").read_text())}

def psql(sql, stdin=None):
    return sh("docker", "exec", "-i", NAME, "psql", "-X", "-qAt", "-h", "/var/run/postgresql",
              "-U", "agent", "-d", "hive_agent", "-v", "ON_ERROR_STOP=1", "-c", sql, input=stdin).stdout.strip()

sh("docker", "rm", "-f", NAME, check=False)
try:
    # 1. start to healthy
    t0 = time.monotonic(); compose("up", "-d")
    res["healthy_fresh_s"] = round(until_healthy(PORT, t0), 2)
    warm, stops = [], []
    for _ in range(3):
        t0 = time.monotonic(); sh("docker", "stop", "-t", "30", NAME); stops.append(time.monotonic() - t0)
        t0 = time.monotonic(); sh("docker", "start", NAME); warm.append(until_healthy(PORT, t0))
    res["healthy_restart_s"] = [round(x, 2) for x in warm]
    res["stop_s"] = [round(x, 2) for x in stops]
    t0 = time.monotonic(); compose("down", "-t", "30"); compose("up", "-d")
    res["healthy_recreate_s"] = round(until_healthy(PORT, t0), 2)
    time.sleep(3)  # let the start settle before measuring idle memory (not synchronisation)
    res["mem_idle"] = mem(NAME)

    # 2. health latency
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    lat = []
    for _ in range(1000):
        t = time.perf_counter(); conn.request("GET", "/api/v1/health"); r = conn.getresponse(); r.read()
        lat.append(time.perf_counter() - t); assert r.status == 200
    res["health_keepalive_ms"] = ms(lat)
    lat = []
    for _ in range(300):
        t = time.perf_counter(); c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        c.request("GET", "/api/v1/health"); r = c.getresponse(); r.read(); c.close()
        lat.append(time.perf_counter() - t)
    res["health_newconn_ms"] = ms(lat)

    # 3. 100k x 384 random vectors: COPY, HNSW build, searches through the API
    rnd = random.Random(42)
    psql("SELECT 1 FROM agno.knowledge_base LIMIT 1")  # schema exists (the app applied it)
    psql("DROP INDEX IF EXISTS agno.knowledge_base_embedding_hnsw")
    def rows():
        for i in range(ROWS):
            yield "row %d\t[%s]\n" % (i, ",".join("%.5f" % (rnd.random() - 0.5) for _ in range(384)))
    t0 = time.monotonic()
    p = subprocess.Popen(["docker", "exec", "-i", NAME, "psql", "-X", "-q", "-h", "/var/run/postgresql",
                          "-U", "agent", "-d", "hive_agent", "-v", "ON_ERROR_STOP=1", "-c",
                          "\\copy agno.knowledge_base(content, embedding) FROM STDIN"],
                         stdin=subprocess.PIPE, text=True)
    buf = []
    for line in rows():
        buf.append(line)
        if len(buf) >= 2000:
            p.stdin.write("".join(buf)); buf = []
    p.stdin.write("".join(buf)); p.stdin.close()
    assert p.wait() == 0
    res["copy_s"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    psql("SET maintenance_work_mem = '512MB'; SET max_parallel_maintenance_workers = 1; "
         "CREATE INDEX knowledge_base_embedding_hnsw ON agno.knowledge_base "
         "USING hnsw (embedding vector_cosine_ops)")
    res["hnsw_build_s"] = round(time.monotonic() - t0, 1)
    res["rows_in_table"] = int(psql("SELECT count(*) FROM agno.knowledge_base"))
    res["mem_after_load"] = mem(NAME)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    def search():
        q = [rnd.random() - 0.5 for _ in range(384)]
        body = json.dumps({"embedding": q, "k": 10})
        t = time.perf_counter()
        conn.request("POST", "/api/v1/knowledge/search", body, {"Content-Type": "application/json"})
        r = conn.getresponse(); out = json.loads(r.read())
        d = time.perf_counter() - t
        assert r.status == 200 and len(out["results"]) == 10, out
        return d
    for _ in range(20):
        search()  # warm-up
    res["search_ms"] = ms([search() for _ in range(200)])
    res["mem_after_search"] = mem(NAME)
    # the same searches with the container capped (the page cache above is reclaimable)
    for limit in ("512m", "256m"):
        r = sh("podman", "update", "--memory", limit, NAME, check=False)
        if r.returncode != 0:
            res[f"capped_{limit}"] = f"podman update failed: {r.stderr.strip()[:200]}"
            continue
        res[f"capped_{limit}"] = {"search_ms": ms([search() for _ in range(200)]),
                                  "healthy": healthy(PORT), "mem": mem(NAME)}
    t0 = time.monotonic(); sh("docker", "stop", "-t", "30", NAME)
    res["stop_loaded_s"] = round(time.monotonic() - t0, 2)
finally:
    compose("down", "-t", "30", check=False)

# 4. the split stack, same run: time to healthy (fresh init, then a restart)
split = ROOT / "fixtures/split/new-stack.sh"
if split.exists():
    sd = work / "split"
    senv = dict(os.environ, HIVE_NAME_PREFIX="hd-bench-", HIVE_AGENT_API_PORT="21887",
                HIVE_AGENT_PG_PORT="21533", COMPOSE_PROJECT_NAME="hd-bench-split")
    sh(split, sd, "--profile", "agent", env=senv)
    os.chmod(sd / "data/postgres-agent", 0o777)
    def scompose(*a, check=True):
        return sh("docker", "compose", "--project-directory", sd, *a, env=senv, check=check)
    try:
        t0 = time.monotonic(); scompose("up", "-d")
        res["split_healthy_fresh_s"] = round(until_healthy(21887, t0), 2)
        scompose("stop", "-t", "30")
        t0 = time.monotonic(); scompose("up", "-d")
        res["split_healthy_restart_s"] = round(until_healthy(21887, t0), 2)
        res["split_mem"] = {n: mem(n)["usage_mb"] for n in ("hd-bench-hive-postgres-agent", "hd-bench-hive-agent-api")}
    finally:
        scompose("down", "-t", "30", check=False)

out = ROOT / "tests/bench/results" / f"unified-{time.strftime('%Y%m%dT%H%M%S')}.json"
out.write_text(json.dumps(res, indent=2))
print(json.dumps(res, indent=2))
subprocess.run(["rm", "-rf", str(work)])
PY
