# intauth: a GNU Makefile. `make` builds everything into build/.
# make run | test | bench | install PREFIX=/usr/local DESTDIR= | clean
# make fuzz [FUZZ_SECONDS=60] | fuzz-smoke | valgrind

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
PKGS     := fcgi libcjson libpq libsodium libcurl

# SANITIZE=address,undefined builds the same sources with sanitizers.
SANITIZE ?=
OPT      ?= -O2 -g
CFLAGS   ?= $(OPT)
CFLAGS   += -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla \
            -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
            -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE \
            -Ilib $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
            -DIA_DEFAULT_PROVIDERS_FILE='"$(PREFIX)/share/intauth/providers.json"' \
            -DIA_DEFAULT_SQL_DIR='"$(PREFIX)/share/intauth/sql"'
LDFLAGS  += -pie -Wl,-z,relro,-z,now
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

LIB_SRC  := $(wildcard lib/*.c)
LIB_OBJ  := $(LIB_SRC:lib/%.c=$(BUILD)/obj/lib/%.o)
LIB_A    := $(BUILD)/libintauth.a
CGI      := $(patsubst cgi-bin/%.c,$(BUILD)/cgi-bin/%,$(wildcard cgi-bin/*.c))
BINS     := $(patsubst bin/%.c,$(BUILD)/bin/%,$(wildcard bin/*.c))
UNIT     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

.PHONY: all programs unit run test bench install clean deps fuzz fuzz-build fuzz-smoke valgrind

all: $(LIB_A) $(CGI) $(BINS) $(UNIT)
programs: $(LIB_A) $(CGI) $(BINS)
unit: $(UNIT)

$(BUILD)/obj/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/cgi-bin/%: cgi-bin/%.c $(LIB_A) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/bin/%: bin/%.c $(LIB_A) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/ia_test.h $(LIB_A) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

deps:
	scripts/install-deps

run:
	scripts/install-deps run
	$(MAKE) programs
	scripts/run-dev

test: deps
	$(MAKE) all
	$(MAKE) BUILD=build/asan SANITIZE=address,undefined OPT='-O1 -g' unit
	$(MAKE) fuzz-smoke
	tests/run

bench: deps
	$(MAKE) programs
	scripts/bench

install: programs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/intauth \
		$(DESTDIR)$(PREFIX)/share/intauth/sql $(DESTDIR)$(PREFIX)/share/intauth/nginx
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(CGI) $(DESTDIR)$(PREFIX)/libexec/intauth/
	install -m 0644 providers/providers.json $(DESTDIR)$(PREFIX)/share/intauth/
	install -m 0644 sql/*.sql $(DESTDIR)$(PREFIX)/share/intauth/sql/
	install -m 0644 nginx/* $(DESTDIR)$(PREFIX)/share/intauth/nginx/

clean:
	rm -rf build

# ---- fuzzing: libFuzzer targets for every parser of untrusted input --------
# tests/fuzz/fuzz_<name>.c, seeds in tests/fuzz/corpus/<name>/. The library is
# built again with clang into build/fuzz/ with the same -I/-D flags, coverage
# instrumentation and ASan + UBSan (any report aborts). `make fuzz` runs each
# target FUZZ_SECONDS; `make fuzz-smoke` FUZZ_SMOKE_SECONDS each from the seeds
# only (part of `make test`). Either fails on any finding; inputs that crash are
# kept in build/fuzz/artifacts/<name>/.
FUZZ_CC            ?= clang
FUZZ_BUILD         := build/fuzz
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# _FORTIFY_SOURCE's checked copies would hide accesses from ASan's interceptors
FUZZ_CFLAGS         = $(filter-out -O% -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) \
                      -O1 -g -U_FORTIFY_SOURCE $(FUZZ_SAN)
FUZZ_LDFLAGS        = $(filter-out -fsanitize=%,$(LDFLAGS))
FUZZ_NAMES         := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS          := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_OBJ       := $(LIB_SRC:lib/%.c=$(FUZZ_BUILD)/obj/lib/%.o)
FUZZ_LIB_A         := $(FUZZ_BUILD)/libintauth.a

$(FUZZ_BUILD)/obj/lib/%.o: lib/%.c $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB_A): $(FUZZ_LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_LIB_A) $(wildcard lib/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_LIB_A) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_BUILD)

fuzz-smoke: fuzz-build
	tests/fuzz/run $(FUZZ_SMOKE_SECONDS) $(FUZZ_BUILD) smoke

# ---- valgrind (memcheck) over the unit tests: any error or definite leak fails
VALGRIND_FLAGS ?= --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite

valgrind: unit
	@fail=0; for t in $(UNIT); do \
		if valgrind -q $(VALGRIND_FLAGS) $$t >$$t.valgrind.out 2>$$t.valgrind.err; then \
			echo "valgrind $$t: clean"; \
		else \
			fail=1; echo "valgrind $$t: FAILED"; cat $$t.valgrind.err; \
			grep -E '^not ok' $$t.valgrind.out || true; \
		fi; \
	done; exit $$fail
