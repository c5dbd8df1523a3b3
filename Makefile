# hive-migrate. `make` builds ./hive-migrate; `make test` runs the whole suite (unit, fuzz
# smoke, end-to-end against a real engine); `make demo` shows the migration on a sample stack.
CC      ?= cc
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3
PKGS     = libarchive uuid json-c libcrypto libcurl libsodium libxml-2.0
CPPFLAGS += -I$(shell pg_config --includedir) $(shell pkg-config --cflags $(PKGS)) -D_GNU_SOURCE
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-truncation
LDLIBS  += -L$(shell pg_config --libdir) -lpq $(shell pkg-config --libs $(PKGS))

BUILD   ?= build
LIB_SRC  = $(sort $(wildcard common/*.c migrate/*.c backup/*.c backup/storage/*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC = $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all install test unit fuzz e2e engine objstore objstore-stop tools asan valgrind demo demo-clean bench format format-check clean

all: hive-migrate

$(BUILD)/%.o: %.c $(wildcard common/*.h migrate/*.h backup/*.h backup/storage/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libhive.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

hive-migrate: $(BUILD)/cli/main.o $(BUILD)/libhive.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhive.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libhive.a $(LDLIBS) -lcmocka

# Test-only programs (not installed): hm-storage-tool drives backup/storage for the e2e tests.
TOOLS = $(BUILD)/tests/hm-storage-tool
$(BUILD)/tests/hm-storage-tool: tests/objstore/storage_tool.c $(BUILD)/libhive.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libhive.a $(LDLIBS)
tools: $(TOOLS)

install: hive-migrate
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/hive-migrate
	install -m 0755 hive-migrate $(DESTDIR)$(PREFIX)/bin/hive-migrate
	cp -R docker $(DESTDIR)$(PREFIX)/share/hive-migrate/

# Unit tests (cmocka): pure logic and parsers.
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; HM_SRCDIR=$(CURDIR) $$t; done

# A short libFuzzer run of every fuzz target (long runs: make fuzz FUZZ_SECONDS=600). The
# library is compiled once for all targets (fuzzer-no-link), each target only links.
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS = -std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OBJ = $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/obj/%.o: %.c $(wildcard common/*.h migrate/*.h backup/*.h backup/storage/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(CPPFLAGS) -c -o $@ $<
$(BUILD)/fuzz/libhive-fuzz.a: $(FUZZ_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libhive-fuzz.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(CPPFLAGS) -o $@ $< $(BUILD)/fuzz/libhive-fuzz.a $(LDLIBS)
fuzz: $(FUZZ_BIN)
	@set -e; for n in $(notdir $(FUZZ_BIN)); do \
	  mkdir -p $(BUILD)/fuzz/$$n.corpus; \
	  echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
	  if ! $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)/fuzz/$$n.corpus $$( [ -d tests/fuzz/$$n.seeds ] && echo tests/fuzz/$$n.seeds ) \
	    > $(BUILD)/fuzz/$$n.log 2>&1; then tail -n 40 $(BUILD)/fuzz/$$n.log; echo "fuzz $$n failed"; exit 1; fi; \
	  tail -n 3 $(BUILD)/fuzz/$$n.log; \
	done

# The real container engine (podman + docker CLI + compose v2), base images, health pump.
engine:
	tests/engine-setup.sh

# The real S3 server of the test bed (single-node Ceph + radosgw in the container ho-ceph,
# data under /var/cache/hive-migrate-objstore): reused while it runs, a fresh cluster on each start.
objstore: engine
	tests/objstore/ceph-setup.sh start >/dev/null
objstore-stop:
	tests/objstore/ceph-setup.sh stop

# End-to-end tests: real PostgreSQL, pgvector, engine and compose, and radosgw.
e2e: hive-migrate tools engine objstore
	DOCKER_HOST=unix:///run/podman/podman.sock $(PYTHON) -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

test: hive-migrate unit fuzz e2e

asan:
	$(MAKE) BUILD=build/asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit

valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do HM_SRCDIR=$(CURDIR) valgrind -q --error-exitcode=99 --leak-check=full $$t; done

demo: 
	tests/demo.sh

bench: hive-migrate engine
	tests/bench/run.sh

FORMAT_SRC = $(wildcard common/*.[ch] migrate/*.[ch] backup/*.[ch] backup/storage/*.[ch] cli/*.[ch] tests/unit/*.c tests/fuzz/*.c tests/objstore/*.c)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build hive-migrate

# --- unified container (docker/) ---
# Everyday commands for the unified containers: make agent-start agent-stop agent-status
# agent-logs agent-shell agent-psql (and genie-...). Data lives in STACK_DIR/data/postgres-<profile>
# (STACK_DIR defaults to this folder); put HIVE_DB_PASSWORD=... (optionally HIVE_BACKUP_PASSWORD)
# in STACK_DIR/.env (0600) or the environment. Details: docs/unified-container.md.
STACK_DIR ?= $(CURDIR)
UNIFIED_PROFILES = agent genie
UNIFIED_ENV = DOCKER_HOST=$(or $(DOCKER_HOST),unix:///run/podman/podman.sock)
UNIFIED_COMPOSE = $(UNIFIED_ENV) docker compose -f $(CURDIR)/docker/$*/docker-compose.unified.yml --project-directory $(STACK_DIR)
UNIFIED_NAME = $(or $(HIVE_CONTAINER_NAME),hive-$*-unified)

.PHONY: unified-image $(foreach t,start stop status logs shell psql,$(UNIFIED_PROFILES:%=%-$(t)))

unified-image:
	docker/build-image.sh
$(UNIFIED_PROFILES:%=%-start): %-start: unified-image
	@d=$(or $(HIVE_DATA_DIR),$(STACK_DIR)/data/postgres-$*); if [ ! -d "$$d" ]; then \
	  mkdir -p "$$d" && chown $(or $(HIVE_UID),1000):$(or $(HIVE_GID),1000) "$$d"; fi
	$(UNIFIED_COMPOSE) up -d
$(UNIFIED_PROFILES:%=%-stop): %-stop:
	$(UNIFIED_COMPOSE) stop -t 30
$(UNIFIED_PROFILES:%=%-status): %-status:
	@$(UNIFIED_ENV) docker ps -a --filter name=$(UNIFIED_NAME) --format '{{.Names}}: {{.Status}}'
	@$(UNIFIED_ENV) docker exec $(UNIFIED_NAME) /usr/local/bin/hive-healthcheck || true
	@$(UNIFIED_ENV) docker exec $(UNIFIED_NAME) supervisorctl -c /etc/hive/supervisord.conf status || true
$(UNIFIED_PROFILES:%=%-logs): %-logs:
	$(UNIFIED_ENV) docker logs --tail 200 -f $(UNIFIED_NAME)
$(UNIFIED_PROFILES:%=%-shell): %-shell:
	$(UNIFIED_ENV) docker exec -it $(UNIFIED_NAME) bash
$(UNIFIED_PROFILES:%=%-psql): %-psql:
	$(UNIFIED_ENV) docker exec -it $(UNIFIED_NAME) sh -c 'psql -h /var/run/postgresql -U "$$HIVE_DB_USER" -d "$$HIVE_DB_NAME"'
# --- end unified container ---

# Remove what `make demo` created (its containers and ./demo-work).
demo-clean:
	-DOCKER_HOST=unix:///run/podman/podman.sock docker compose --project-directory demo-work down -t 30
	-DOCKER_HOST=unix:///run/podman/podman.sock docker stop -t 30 hive-agent-unified
	-DOCKER_HOST=unix:///run/podman/podman.sock docker rm -f hive-agent-unified
	rm -rf demo-work
