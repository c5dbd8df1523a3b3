"""The container engine as the split stack needs it: on a compose network, one service reaches
another by its service name. The split API connects to "postgres-agent" by name, so without
service-name DNS (podman's CNI backend without the dnsname plugin, or netavark without
aardvark-dns) the whole split stack stays unhealthy with "Name or service not known".
tests/engine-setup.sh installs the DNS plugin of whichever backend podman uses.

Names: compose project "hn-dns-<pid>"; no host ports.
"""
import os

from conftest import run, wait_until

COMPOSE = """\
services:
  db:
    image: docker.io/library/debian:trixie-slim
    pull_policy: never
    command: ["sleep", "300"]
    stop_grace_period: 1s
  app:
    image: docker.io/library/debian:trixie-slim
    pull_policy: never
    command: ["sleep", "300"]
    stop_grace_period: 1s
"""


def test_compose_service_names_resolve(engine, tmp_path):
    project = f"hn-dns-{os.getpid()}"
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    base = ["docker", "compose", "--project-directory", tmp_path, "-p", project]
    try:
        up = run([*base, "up", "-d"])
        assert up.returncode == 0, up.stderr
        net = f"{project}_default"
        dns = run(["podman", "network", "inspect", "--format", "{{.DNSEnabled}}", net])
        assert dns.stdout.strip() == "true", (
            f"network {net} has no DNS ({dns.stdout.strip()!r}): service names cannot resolve; "
            "tests/engine-setup.sh must install aardvark-dns (netavark) or the dnsname plugin (CNI)")

        def resolved():
            r = run([*base, "exec", "-T", "app", "getent", "hosts", "db"])
            return r.stdout.split()[0] if r.returncode == 0 and r.stdout.strip() else None

        addr = wait_until(resolved, timeout=30, what="service name 'db' to resolve from 'app'")
        # The name must resolve to db's own address on that network, not to anything else.
        ip = run(["docker", "inspect", "--format",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                  f"{project}-db-1"]).stdout.split()
        assert addr in ip, (addr, ip)
    finally:
        run([*base, "down", "-t", "1"])
