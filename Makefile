# labpulse: small programs for the live activity of JupyterLab classrooms.
include config.mk

PROGS    = ingest batch-commit migrate-indexes route notify poolstat loadgen
LIBOBJ   = $(patsubst %.c,%.o,$(wildcard lib/*.c))
PKGS     = libevent hiredis libpq libcurl nettle zlib
# The libraries' flags, as pkg-config tells them when make reads this file.
# On a machine without the libraries that is nothing at all, so `make demo`
# and `make test` install them first and build in a make of their own,
# which reads them anew; a plain `make` without them stops at libs-check.
DEPCFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
DEPLIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -ljq -lwslay -lhttp_parser -lm
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(DEPCFLAGS) -Icmd

# A program NAME is every cmd/NAME/*.c; cmd/*.c are the helpers mains share
# (cmd/prog.h), an archive so that each takes only what it uses.
$(foreach p,$(PROGS) labpulse,$(eval $(p)_OBJ = $(patsubst %.c,%.o,$(wildcard cmd/$(p)/*.c))))
PROGOBJ  = $(patsubst %.c,%.o,$(wildcard cmd/*.c))
UNIT     = $(patsubst %.c,%,$(wildcard tests/unit/test_*.c))
BENCH    = tests/bench/httpbench
TOOLS    = tests/tools/lpwatch tests/tools/stallserver

BINS = $(PROGS:%=bin/%) bin/labpulse bin/stack bin/setup

.PHONY: all deps test check unit asan bench install uninstall clean demo lint \
	cluster-up cluster-down cluster-test \
	fuzz fuzz-build fuzz-replay fuzz-merge libs-check check-fresh
all: $(BINS)

# Before anything compiles: every library there, or a message naming the
# missing ones and `make deps`, rather than the compiler's first error.
libs-check:
	@sh mk/libs.sh '$(PKG_CONFIG)' '$(CC)' $(PKGS)

# V=1 shows the whole commands.
Q = $(if $(V),,@)
%.o: %.c | libs-check
	@$(if $(V),,echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

lib/liblabpulse.a: $(LIBOBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $(LIBOBJ)

cmd/libprog.a: $(PROGOBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $(PROGOBJ)

# One link rule per program, from its NAME_OBJ list.
define prog_rule
bin/$(1): $$($(1)_OBJ) cmd/libprog.a lib/liblabpulse.a
	@mkdir -p bin
	@$$(if $$(V),,echo "  LD      $$@")
	$$(Q)$$(CC) $$(ALL_CFLAGS) $$(LDFLAGS) -o $$@ $$($(1)_OBJ) cmd/libprog.a lib/liblabpulse.a $$(DEPLIBS)
endef
$(foreach p,$(PROGS) labpulse,$(eval $(call prog_rule,$(p))))

bin/stack: cmd/labpulse/stack.sh
	@mkdir -p bin
	cp cmd/labpulse/stack.sh $@ && chmod 755 $@

# `labpulse setup` looks for the token file and the units' environment
# file where this build installs them.
bin/setup: cmd/labpulse/setup.sh config.mk
	@mkdir -p bin
	sed -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|' -e 's|@ENVFILE@|$(ENVFILE)|' \
		cmd/labpulse/setup.sh >$@ && chmod 755 $@

tests/unit/test_split: tests/unit/test_split.o tests/unit/tap.o cmd/migrate-indexes/split.o \
    lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

tests/unit/test_plan: tests/unit/test_plan.o tests/unit/tap.o \
    cmd/migrate-indexes/plan.o cmd/migrate-indexes/split.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

tests/unit/test_rules: tests/unit/test_rules.o tests/unit/tap.o tests/unit/jq_leaks.o \
    cmd/route/rules.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

tests/unit/test_notify_request: tests/unit/test_notify_request.o tests/unit/tap.o \
    cmd/notify/request.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

tests/unit/test_pace: tests/unit/test_pace.o tests/unit/tap.o cmd/notify/pace.o \
    lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

# The shared command line of cmd/ (opt.c, prog.c), from its archive.
tests/unit/test_prog: tests/unit/test_prog.o tests/unit/tap.o cmd/libprog.a \
    lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

tests/unit/%: tests/unit/%.o tests/unit/tap.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< tests/unit/tap.o lib/liblabpulse.a $(DEPLIBS)

tests/tools/lpwatch: tests/tools/lpwatch.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< lib/liblabpulse.a $(DEPLIBS)

tests/tools/stallserver: tests/tools/stallserver.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< lib/liblabpulse.a $(DEPLIBS)

tests/bench/httpbench: tests/bench/httpbench.o lib/liblabpulse.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< lib/liblabpulse.a $(DEPLIBS)

# What the machine needs from Debian's packages: `make deps` all of it,
# the demo only what the programs and the local stack need (mk/deps.sh).
DEPS = sh mk/deps.sh
deps:
	@$(DEPS) test

# Fuzzing. tests/fuzz/NAME.c is a libFuzzer target; fuzz_NAME_SRC lists the
# sources it is built from; tests/fuzz/corpus/NAME/ holds its seeds and every
# crash it ever found. `make fuzz` runs each target for FUZZ_SECONDS under
# libFuzzer (clang), new inputs going to tests/fuzz/runs/NAME; `make
# fuzz-merge` keeps those that add coverage in the corpus. `make test`
# replays every corpus through its target built with ASan and UBSan by
# $(CC) and tests/fuzz/replay.c: fast, deterministic, no clang needed.
FUZZ =
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_SAN = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
define fuzz_rule
tests/fuzz/bin/$(1)-replay: tests/fuzz/$(1).c tests/fuzz/replay.c $$(fuzz_$(1)_SRC) $$(wildcard lib/*.h cmd/*/*.h) | libs-check
	@mkdir -p tests/fuzz/bin
	@$$(if $$(V),,echo "  LD      $$@")
	$$(Q)$$(CC) $$(CPPFLAGS) -std=c11 $$(WARN) $$(FUZZ_SAN) $$(DEPCFLAGS) -Icmd \
		-o $$@ tests/fuzz/$(1).c tests/fuzz/replay.c $$(fuzz_$(1)_SRC) $$(DEPLIBS)
tests/fuzz/bin/$(1)-fuzz: tests/fuzz/$(1).c $$(fuzz_$(1)_SRC) $$(wildcard lib/*.h cmd/*/*.h) | libs-check
	@mkdir -p tests/fuzz/bin
	@$$(if $$(V),,echo "  LD      $$@")
	$$(Q)$$(FUZZ_CC) $$(CPPFLAGS) -std=c11 $$(WARN) $$(FUZZ_SAN) -fsanitize=fuzzer \
		$$(DEPCFLAGS) -Icmd -o $$@ tests/fuzz/$(1).c $$(fuzz_$(1)_SRC) $$(DEPLIBS)
endef
include tests/fuzz/targets.mk
$(foreach t,$(FUZZ),$(eval $(call fuzz_rule,$(t))))

fuzz-replay: $(FUZZ:%=tests/fuzz/bin/%-replay)
fuzz-build: $(FUZZ:%=tests/fuzz/bin/%-fuzz)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@for t in $(FUZZ); do \
		mkdir -p tests/fuzz/runs/$$t tests/fuzz/crashes; \
		echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
		tests/fuzz/bin/$$t-fuzz -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/$$t- \
			$$([ -f tests/fuzz/$$t.dict ] && echo -dict=tests/fuzz/$$t.dict) \
			tests/fuzz/runs/$$t tests/fuzz/corpus/$$t \
			>tests/fuzz/runs/$$t.log 2>&1 || \
			{ tail -n 40 tests/fuzz/runs/$$t.log; exit 1; }; \
		grep -E '^(#[0-9]+.*DONE|stat::)' tests/fuzz/runs/$$t.log; \
	done

fuzz-merge: fuzz-build
	@for t in $(FUZZ); do \
		tests/fuzz/bin/$$t-fuzz -merge=1 tests/fuzz/corpus/$$t \
			tests/fuzz/runs/$$t 2>&1 | tail -n 1; \
	done

unit: $(UNIT) $(TOOLS) fuzz-replay

# The whole suite: C unit tests and command-level tests, all as TAP under
# prove. Built in a make of its own, after deps (see DEPCFLAGS).
PROVE = prove -f -o -j1
test check: deps
	@$(MAKE) --no-print-directory all unit
	$(PROVE) $(UNIT) tests/*.bats

# Rebuild with AddressSanitizer and UBSan and run the suite. Daemons write
# their reports to files (their stderr goes to logs): any report fails it.
ASAN_DIR = $(CURDIR)/asan-reports
asan: deps
	$(MAKE) clean
	$(MAKE) CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
		LDFLAGS='-fsanitize=address,undefined' all unit
	rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR)
	ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_DIR)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_DIR)/ubsan \
		$(PROVE) $(UNIT) tests/*.bats
	@if [ -n "$$(ls $(ASAN_DIR))" ]; then cat $(ASAN_DIR)/*; \
		echo "asan: sanitizer reports above" >&2; exit 1; fi
	rm -rf $(ASAN_DIR)
	$(MAKE) clean

# Benchmarks against a private stack; each prints its figures beside a
# reference measured in the same run, and writes tests/bench/out/*.json.
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH) $(TOOLS)
	sh tests/bench/ingest.sh
	sh tests/bench/commit.sh
	sh tests/bench/indexes.sh
	sh tests/bench/notify.sh
	sh tests/bench/hooks.sh
	sh tests/bench/route.sh
	sh tests/bench/storm.sh
	sh tests/bench/loadgen.sh
	sh tests/bench/durability.sh
	sh tests/bench/stack.sh
	sh tests/bench/soak.sh
	@if [ "$$(id -u)" -eq 0 ]; then sh tests/bench/cluster.sh; \
	else echo "make: bench: tests/bench/cluster.sh skipped: the cluster needs root (network namespaces)"; fi

# The README's first command: what the programs need, the programs, and the
# demo (DEMO), built in a make of its own after deps (see DEPCFLAGS).
DEMO = sh mk/demo.sh
demo:
	@$(DEPS) demo
	@$(MAKE) --no-print-directory all
	@$(DEMO)

# The README's two commands in a clean Debian 12 root, then the systemd
# units booted in it (mk/check-fresh.sh; needs root).
check-fresh:
	sh mk/check-fresh.sh

# The scale-out cluster of tests/cluster/: nine hosts in network namespaces
# around Redis Sentinel, pg_auto_failover, PgBouncer and HAProxy (root
# only); cluster-test runs its failure tests, which bring it up themselves.
CLUSTER = bash tests/cluster/cluster.sh
CLUSTER_ROOT = @[ "$$(id -u)" -eq 0 ] || { echo "make: $@ needs root (network namespaces)" >&2; exit 77; }
cluster-up:
	$(CLUSTER_ROOT)
	@$(DEPS) test
	@$(MAKE) --no-print-directory all
	$(CLUSTER) up

cluster-down:
	$(CLUSTER_ROOT)
	$(CLUSTER) down

cluster-test:
	$(CLUSTER_ROOT)
	@$(DEPS) test
	@$(MAKE) --no-print-directory all
	bats tests/cluster/smoke.bats tests/cluster/failover.bats

lint:
	mandoc -Tlint -W warning man/man1/*.1 man/man7/*.7

# The units and the example environment file name the places of
# PREFIX=/usr/local; they are installed naming those of this build.
INSTALL_SED = sed -e 's|/usr/local/libexec/labpulse|$(LIBEXECDIR)|g' \
	-e 's|/usr/local/etc/labpulse|$(SYSCONFDIR)/labpulse|g' \
	-e 's|/etc/default/labpulse|$(ENVFILE)|g'
SYSTEMD_UNITS = $(notdir $(wildcard etc/systemd/*.service etc/systemd/*.socket \
	etc/systemd/*.target etc/systemd/*.timer))
ETCDIR = $(DESTDIR)$(SYSCONFDIR)/labpulse

# What the operator edits (the rules, the token file, the hooks file, the
# environment file) is installed only when it is not there yet, and
# uninstalled only when it is still what was installed. The token file and
# the environment file may hold secrets: they are not for everybody to read
# (`labpulse setup` gives the token file to the group labpulse, which ingest
# runs as; systemd reads the environment file as root). The hooks file
# holds none: its key and token files do, which the operator makes.
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(DATADIR)/migrations $(DESTDIR)$(DATADIR)/migrations/optional \
		$(DESTDIR)$(DATADIR)/web \
		$(ETCDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(dir $(ENVFILE))
	install -m 755 bin/labpulse $(DESTDIR)$(BINDIR)/labpulse
	for p in $(PROGS) stack setup; do install -m 755 bin/$$p $(DESTDIR)$(LIBEXECDIR)/$$p; done
	install -m 644 man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/man7/*.7 $(DESTDIR)$(MANDIR)/man7/
	for f in etc/migrations/*.sql; do [ -e "$$f" ] || continue; \
		install -m 644 "$$f" $(DESTDIR)$(DATADIR)/migrations/; done
	for f in etc/migrations/optional/*.sql; do [ -e "$$f" ] || continue; \
		install -m 644 "$$f" $(DESTDIR)$(DATADIR)/migrations/optional/; done
	install -m 644 share/web/* $(DESTDIR)$(DATADIR)/web/
	for u in $(SYSTEMD_UNITS); do \
		$(INSTALL_SED) etc/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	[ -e $(ETCDIR)/route.jq ] || install -m 644 etc/labpulse/route.jq $(ETCDIR)/route.jq
	[ -e $(ETCDIR)/tokens ] || install -m 640 etc/labpulse/tokens $(ETCDIR)/tokens
	[ -e $(ETCDIR)/hooks ] || { $(INSTALL_SED) etc/labpulse/hooks >$(ETCDIR)/hooks && \
		chmod 644 $(ETCDIR)/hooks; }
	[ -e $(DESTDIR)$(ENVFILE) ] || { umask 077 && \
		$(INSTALL_SED) etc/default/labpulse >$(DESTDIR)$(ENVFILE) && \
		chmod 640 $(DESTDIR)$(ENVFILE); }

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/labpulse
	rm -rf $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DATADIR)
	cd man && for f in man1/*.1 man7/*.7; do rm -f $(DESTDIR)$(MANDIR)/$$f; done
	for u in $(SYSTEMD_UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
	! cmp -s etc/labpulse/route.jq $(ETCDIR)/route.jq || rm -f $(ETCDIR)/route.jq
	! cmp -s etc/labpulse/tokens $(ETCDIR)/tokens || rm -f $(ETCDIR)/tokens
	! $(INSTALL_SED) etc/labpulse/hooks | cmp -s - $(ETCDIR)/hooks || \
		rm -f $(ETCDIR)/hooks
	! $(INSTALL_SED) etc/default/labpulse | cmp -s - $(DESTDIR)$(ENVFILE) || \
		rm -f $(DESTDIR)$(ENVFILE)
	! [ -d $(ETCDIR) ] || rmdir $(ETCDIR) 2>/dev/null || \
		echo "uninstall: kept what was changed in $(ETCDIR)"

clean:
	rm -rf bin lib/*.o lib/*.a lib/*.d cmd/*.o cmd/*.a cmd/*.d cmd/*/*.o cmd/*/*.d \
		tests/unit/*.o tests/unit/*.d tests/bench/*.o tests/bench/*.d \
		tests/tools/*.o tests/tools/*.d $(UNIT) $(BENCH) $(TOOLS) \
		tests/fuzz/bin

-include $(wildcard lib/*.d cmd/*.d cmd/*/*.d tests/unit/*.d tests/bench/*.d tests/tools/*.d)
