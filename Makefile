# intauth: a GNU Makefile. `make` builds everything into build/.
# make run | test | bench | install PREFIX=/usr/local DESTDIR= | clean

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

.PHONY: all programs unit run test bench install clean deps

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

run: deps
	$(MAKE) programs
	scripts/run-dev

test: deps
	$(MAKE) all
	$(MAKE) BUILD=build/asan SANITIZE=address,undefined OPT='-O1 -g' unit
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
