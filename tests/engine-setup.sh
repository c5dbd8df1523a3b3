#!/usr/bin/env bash
# Prepares the real container engine for hive-migrate's tests and demo, idempotently:
# podman + runc, the Docker-compatible API socket, the docker CLI's compose v2 plugin,
# base images debian:trixie-slim and debian:forky-slim built with debootstrap (no registry
# is reachable here), and a health pump (podman runs no periodic healthchecks without
# systemd). Recipe and reasons: shared/notes/containers.md.
# Usage: tests/engine-setup.sh          (prints the DOCKER_HOST to export on its last line)
set -euo pipefail

SOCK=/run/podman/podman.sock
CACHE=${HIVE_ENGINE_CACHE:-/var/cache/hive-migrate-engine}
MIRROR=${HIVE_DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)}
HERE=$(cd "$(dirname "$0")" && pwd)
log() { printf 'engine-setup: %s\n' "$*" >&2; }

need_pkgs=()
for p in podman runc debootstrap uidmap; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Engine settings: runc (crun refuses the hybrid cgroup layout), no default ulimits (above the
# sandbox's hard limits), cgroupfs and file events (no systemd).
mkdir -p /etc/containers
conf=/etc/containers/containers.conf
want='[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
fi

# Docker-compatible API socket. A service left running from a directory that was deleted
# since (an earlier CI clone) cannot start containers: replace it.
for pid in $(pgrep -f "podman system service" || true); do
  case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in
    *"(deleted)") log "restarting podman system service (its directory was deleted)"; kill "$pid" ;;
  esac
done
for pid in $(pgrep -f "podman system service" || true); do
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
if ! curl -s --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
  log "starting podman system service on $SOCK"
  mkdir -p /run/podman
  # From / and in its own session: it outlives this script, and a service whose working
  # directory was deleted (a CI clone removed after the run) fails every container start
  # with "write child: broken pipe".
  (cd / && exec nohup setsid podman system service --time=0 "unix://$SOCK" >/var/log/podman-service.log 2>&1 < /dev/null &)
  for _ in $(seq 1 100); do
    curl -s --max-time 1 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -s --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null || { log "podman API did not come up"; exit 1; }
fi
export DOCKER_HOST=unix://$SOCK

# Service-name DNS on compose networks (the split API reaches "postgres-agent" by name).
# Podman answers names only through a plugin of the backend it already uses: netavark needs
# aardvark-dns, CNI needs the dnsname plugin (with dnsmasq). Neither comes with podman on
# bookworm (aardvark-dns is only a Recommends of netavark, dnsname not even that), so name the
# package explicitly, whatever apt's Recommends setting. The backend itself is left as it is:
# switching it on a host with containers would strand their networks.
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
case $backend in
  netavark) dns_pkgs=(aardvark-dns) ;;
  cni) dns_pkgs=(golang-github-containernetworking-plugin-dnsname dnsmasq-base) ;;
  *) log "unknown podman network backend \"$backend\"; cannot set up service-name DNS"; exit 1 ;;
esac
missing_dns=()
for p in "${dns_pkgs[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing_dns+=("$p")
done
if [ ${#missing_dns[@]} -gt 0 ]; then
  log "installing ${missing_dns[*]} (service-name DNS for the $backend backend)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_dns[@]}" >/dev/null
fi
# The plugin only serves networks created after it: name the older ones (never remove them:
# containers of the user's may be attached) and say how to recreate them.
for net in $(podman network ls --format '{{.Name}}' 2>/dev/null); do
  [ "$net" = podman ] && continue  # the default network never has DNS, and compose never uses it
  if [ "$(podman network inspect --format '{{.DNSEnabled}}' "$net" 2>/dev/null)" = false ]; then
    log "network \"$net\" predates service-name DNS; recreate it (docker compose down, then up) so names resolve"
  fi
done

# Compose v2 from trixie's docker-compose package (bookworm only has v1).
if ! docker compose version >/dev/null 2>&1; then
  log "installing compose v2 from trixie"
  st=$CACHE/apt-trixie
  mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/etc"
  printf 'deb %s trixie main\n' "$MIRROR" > "$st/etc/sources.list"
  aopt=(-o Dir::Etc::sourcelist="$st/etc/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache" -o APT::Get::List-Cleanup=0)
  apt-get "${aopt[@]}" update -qq
  (cd "$st" && apt-get "${aopt[@]}" download docker-compose >/dev/null)
  dpkg -i --force-depends "$st"/docker-compose_*.deb >/dev/null
  docker compose version >/dev/null
fi

# Base images without a registry.
base_image() { # suite tag [script]
  local suite=$1 tag=$2 script=${3:-}
  if podman image exists "docker.io/library/debian:$tag"; then return 0; fi
  local tarball=$CACHE/rootfs-$suite.tar
  if [ ! -s "$tarball" ]; then
    log "debootstrap $suite (about 30 s)"
    local root; root=$(mktemp -d "$CACHE/rootfs-$suite.XXXX")
    debootstrap --variant=minbase "$suite" "$root" "$MIRROR" $script >/dev/null
    tar -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  podman import "$tarball" "docker.io/library/debian:$tag" >/dev/null
  log "imported debian:$tag"
}
mkdir -p "$CACHE"
base_image trixie trixie-slim
base_image forky forky-slim /usr/share/debootstrap/scripts/sid

# Health pump: runs every container's healthcheck periodically, as Docker's engine would.
"$HERE/health-pump.sh" --ensure

echo "DOCKER_HOST=unix://$SOCK"
