# kq - POSIX make (the BSDs' make and macOS's old GNU make both run it).
#
#   make              build build/kq/core.so and build/kqtest.so
#   make test         check packages (deps), build, run busted
#   make example      the five delayed requests against a local slow server
#   make lint         luacheck
#   make soak         about 60 s of server-shaped load, checked for drift
#   make install      kq/core.so and kq/init.lua under DESTDIR/PREFIX
#   make deps         install missing Debian packages (as root)
#   make rock         build/rock/kq-VERSION-1.src.rock, the release rock
#
# CFLAGS, LIBFLAG and LUA_INCDIR may be given on the command line, as
# LuaRocks does; the flags the build needs live in KQ_CFLAGS, so that
# `make CFLAGS=-O0` still builds with them.  On the BSDs and macOS the
# system has kqueue: build with `make ENGINE_SRC=`.
#
# Lua versions: LUA names the interpreter (lua5.1, lua5.2, lua5.3, lua5.4,
# luajit; default lua5.4) and, unless LUA_PC, LUA_INCDIR or LUA_CFLAGS say
# otherwise, its headers (pkg-config name = LUA).  `make test LUA=luajit`
# builds for LuaJIT and runs busted under it; build/ is rebuilt whenever
# the Lua headers differ from the last build's (build/lua-abi).

.POSIX:
.SUFFIXES:

CC = cc
CFLAGS =
KQ_CFLAGS = -std=c99 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -O2 -g \
	-D_GNU_SOURCE
LUA = lua5.4
LUA_PC = $(LUA)
LUA_INCDIR =
# Include flags only, never --libs: the interpreter provides the Lua API
# and linking liblua could load a second Lua core into the process.
# pkg-config names: LUA_PC, then those the systems give the interpreter's
# Lua version (FreeBSD and NetBSD lua-5.4, OpenBSD lua54, Debian lua5.4,
# Homebrew lua; doc/portability.md).
LUA_CFLAGS = `if [ -n "$(LUA_INCDIR)" ]; then echo "-I$(LUA_INCDIR)"; else \
	v=\`$(LUA) -e 'io.write((string.gsub(_VERSION, "^Lua ", "")))'\`; \
	for p in $(LUA_PC) lua-$$v lua\`echo $$v | tr -d .\` lua$$v lua; do \
	if pkg-config --exists $$p 2>/dev/null; then \
	pkg-config --cflags $$p; exit 0; fi; done; \
	echo "no pkg-config name for $(LUA)'s headers: give LUA_INCDIR" >&2; fi`
LIBFLAG = `if [ "\`uname\`" = Darwin ]; then \
	echo "-bundle -undefined dynamic_lookup"; else echo "-shared"; fi`

PREFIX = /usr/local
# "5.1" for lua5.1 and luajit, ..., "5.4" for lua5.4: asked of the
# interpreter itself, which knows its version whatever its name.
LUA_VERSION = `$(LUA) -e 'io.write((string.gsub(_VERSION, "^Lua ", "")))'`
INST_LIBDIR = $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR = $(PREFIX)/share/lua/$(LUA_VERSION)
DESTDIR =

BUSTED = busted
# .busted names lua5.4; the command line wins.
BUSTED_LUA = --lua=$(LUA)
LUACHECK = luacheck

include csrc/sources.mk

# What `make test` and `make example` need, and the other Luas for
# `make test LUA=...` and `make check-rock LUA=...` (git and zip: make rock).
DEB_PACKAGES = lua5.4 liblua5.4-dev luarocks lua-busted lua-socket \
	lua-check lua-luv lua-cqueues pkg-config gcc make \
	lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
	luajit libluajit-5.1-dev git zip lua-posix

all: build/kq/core.so build/kqtest.so

# The Lua headers of the last build: rewritten (and so newer than the
# modules) only when they change, e.g. from `make LUA=luajit` to `make`.
build/lua-abi: FORCE
	@mkdir -p build; echo $(LUA_CFLAGS) > build/lua-abi.new; \
	if cmp -s build/lua-abi.new build/lua-abi; then \
		rm -f build/lua-abi.new; \
	else mv build/lua-abi.new build/lua-abi; fi

FORCE:

build/kq/core.so: $(BINDING_SRC) $(BINDING_H) $(ENGINE_SRC) $(ENGINE_H) \
		build/lua-abi
	mkdir -p build/kq
	$(CC) $(KQ_CFLAGS) $(CFLAGS) $(LUA_CFLAGS) -o $@ \
		$(BINDING_SRC) $(ENGINE_SRC) $(LIBFLAG)

build/kqtest.so: csrc/testing/kqtest.c csrc/kq_compat.h build/lua-abi
	mkdir -p build
	$(CC) $(KQ_CFLAGS) $(CFLAGS) $(LUA_CFLAGS) -o $@ \
		csrc/testing/kqtest.c $(LIBFLAG)

test: deps all
	$(BUSTED) $(BUSTED_LUA)

# The five delayed requests replayed against a local slow server that the
# example starts itself; prints RECEIVED: 5 .. RECEIVED: 1, FINISHED.
example: deps all
	LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" \
	LUA_CPATH_5_4="./build/?.so;;" $(LUA) examples/five_requests.lua

# Every recipe in examples/, as a quick smoke run (the specs check output).
examples: all
	for f in timers wake_queue child_processes signals file_watcher \
	    nested_loop; do $(LUA) examples/$$f.lua || exit 1; done
	$(LUA) examples/five_requests.lua --scale 0.25

lint:
	$(LUACHECK) .

install: build/kq/core.so
	mkdir -p $(DESTDIR)$(INST_LIBDIR)/kq $(DESTDIR)$(INST_LUADIR)/kq
	cp build/kq/core.so $(DESTDIR)$(INST_LIBDIR)/kq/core.so
	cp lua/kq/init.lua $(DESTDIR)$(INST_LUADIR)/kq/init.lua

# Also what `luarocks make` leaves in the checkout: objects beside the
# sources and kq/core.so at the top.
clean:
	rm -rf build build-asan build-debug bench/build fuzz/corpus-tmp
	find csrc -name "*.o" -exec rm -f {} +
	rm -f kq/core.so
	if [ -d kq ]; then rmdir kq; fi

# Installs what is missing when run as root on Debian; otherwise prints
# the command to run (with sudo where there is one, else su -c) and fails.
# Without dpkg it only says so.
deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "deps: no dpkg; install by hand: $(DEB_PACKAGES)"; \
		exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
			grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "`id -u`" = 0 ]; then \
		apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "deps: missing Debian packages; run:"; \
		echo "  sudo apt-get update && sudo apt-get install -y$$missing"; \
		exit 1; \
	else \
		echo "deps: missing Debian packages; run (as root, no sudo here):"; \
		echo "  su -c 'apt-get update && apt-get install -y$$missing'"; \
		exit 1; \
	fi

# ---- the release rock (README "Packaging") --------------------------------
# `make dist` writes the archive the release rockspec's source.url names:
# the tracked files of the working tree (committed or not) under
# kq-$(KQ_VERSION)/.  `make rock` packs it with that rockspec into a source
# rock, as `luarocks pack` would, without fetching anything.
# `make check-rock LUA=lua5.1` installs that rock from a local rocks server
# into an empty tree and loads it from elsewhere (tests/rock/install.sh).
KQ_VERSION = 0.1.0
ROCK_REV = 1
ROCK_DIR = build/rock
ROCK = kq-$(KQ_VERSION)-$(ROCK_REV)

dist:
	mkdir -p $(ROCK_DIR)
	stash=`git stash create` && git archive --prefix=kq-$(KQ_VERSION)/ \
		-o $(ROCK_DIR)/kq-$(KQ_VERSION).tar.gz $${stash:-HEAD}

rock: dist
	cp rockspec/$(ROCK).rockspec $(ROCK_DIR)/
	cd $(ROCK_DIR) && rm -f $(ROCK).src.rock && zip -q $(ROCK).src.rock \
		$(ROCK).rockspec kq-$(KQ_VERSION).tar.gz
	@echo "rock: $(ROCK_DIR)/$(ROCK).src.rock"

check-rock: deps rock
	sh tests/rock/install.sh $(LUA) $(ROCK_DIR)/$(ROCK).src.rock

# ---- soak (tests/soak/soak.lua) --------------------------------------------
# About SOAK_SECONDS of a server-shaped workload; fails on any lost or
# duplicated event, spin, or descriptor, memory or udata drift.
SOAK_SECONDS = 60
soak: deps all
	LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" \
	LUA_CPATH_5_4="./build/?.so;;" $(LUA) tests/soak/soak.lua $(SOAK_SECONDS)

# ---- benchmarks (bench/RESULTS.md); times are reported, never judged ----
bench: all
	$(MAKE) -C bench run LUA="$(LUA)" LUA_PC="$(LUA_PC)" LUA_INCDIR="$(LUA_INCDIR)"

bench-quick: all
	$(MAKE) -C bench quick LUA="$(LUA)" LUA_PC="$(LUA_PC)" LUA_INCDIR="$(LUA_INCDIR)"

# ---- the native path (doc/portability.md, tests/native/README) ----------
# The binding as the BSDs and macOS build it (KQ_NATIVE: <sys/event.h>,
# kqueue, kevent, close and nothing else), run here over the engine
# dressed as a C library (tests/native/shim.c, preloaded), with the whole
# suite.  The module must import kqueue, kevent and close and nothing of
# the engine; the shim must export those three names and nothing else.
# LUA_INIT preloads the native module in every Lua of $(LUA)'s version
# that the specs start (the examples look in build/ first), so none of
# them loads another build.
NATIVE_DIR = build/native
NATIVE_SHIM = $(NATIVE_DIR)/libkqshim.so

check-native: deps
	@if [ "`uname`" != Linux ]; then \
		echo "check-native: Linux only (elsewhere make test is native)"; \
		exit 1; fi
	mkdir -p $(NATIVE_DIR)/kq
	$(CC) $(KQ_CFLAGS) $(CFLAGS) -DKQ_NATIVE -Itests/native/host \
		$(LUA_CFLAGS) -o $(NATIVE_DIR)/kq/core.so $(BINDING_SRC) \
		$(LIBFLAG)
	$(CC) $(KQ_CFLAGS) $(CFLAGS) $(LUA_CFLAGS) \
		-o $(NATIVE_DIR)/kqtest.so csrc/testing/kqtest.c $(LIBFLAG)
	$(CC) $(KQ_CFLAGS) $(CFLAGS) -Dclose=kq_shim_libc_close -shared \
		-o $(NATIVE_SHIM) tests/native/shim.c $(ENGINE_SRC) -ldl -lpthread
	nm -D --defined-only $(NATIVE_SHIM) | \
		awk '$$2 ~ /[TDBRVWi]/ { print $$3 }' | sort | tr '\n' ' ' | \
		grep -qx 'close kevent kqueue '
	nm -D --undefined-only $(NATIVE_DIR)/kq/core.so | \
		awk '{ sub(/@.*/, "", $$2); print $$2 }' > $(NATIVE_DIR)/imports
	for f in kqueue kevent close; do grep -qx $$f $(NATIVE_DIR)/imports || \
		{ echo "check-native: the module does not call $$f"; exit 1; }; \
	done
	! grep -q '^kqe_' $(NATIVE_DIR)/imports
	v=`$(LUA) -e 'io.write(_VERSION)'`; \
	init="if _VERSION == '$$v' then package.preload['kq.core'] = \
		assert(package.loadlib('`pwd`/$(NATIVE_DIR)/kq/core.so', \
		'luaopen_kq_core')) end"; \
	LD_PRELOAD="`pwd`/$(NATIVE_SHIM)" LUA_INIT="$$init" \
	LUA_INIT_5_2="$$init" LUA_INIT_5_3="$$init" LUA_INIT_5_4="$$init" \
		$(BUSTED) $(BUSTED_LUA) --cpath="./$(NATIVE_DIR)/?.so"

# The binding compiled for FreeBSD 14 and 15, macOS, OpenBSD 7.8, NetBSD 9
# and 10 with clang --target, against stand-in headers written from each
# system's documentation (tests/native/<system>/), and the constants it
# exports there held to tests/native/constants.txt (tests/native/README).
CLANG = clang
LLVM_NM = llvm-nm
check-headers: deps
	@$(MAKE) -s deps DEB_PACKAGES="clang llvm"
	KQ_CLANG="$(CLANG)" KQ_NM="$(LLVM_NM)" KQ_HOST_CC="$(CC)" \
	KQ_CFLAGS="$(KQ_CFLAGS)" \
	KQ_LUA_CFLAGS="$(LUA_CFLAGS)" KQ_BINDING_SRC="$(BINDING_SRC)" \
		$(BUSTED) $(BUSTED_LUA) -f tests/native/headers.busted

# Rewrites the constants table of doc/portability.md from
# tests/native/constants.txt (check-headers fails while they differ).
portability-doc:
	$(LUA) tests/native/constants.lua doc/portability.md

.PHONY: check-native check-headers portability-doc

# The engine's files stand in floors, never in a circle (csrc/engine/queue.h).
check-layers:
	sh tests/layers.sh

# The whole suite and the engine's C tests with the engine's debug
# assertions on (-DKQE_DEBUG: lock ownership and knote state).
check-debug: deps
	mkdir -p build-debug/kq
	$(CC) $(KQ_CFLAGS) -O1 -DKQE_DEBUG $(LUA_CFLAGS) \
		-o build-debug/kq/core.so $(BINDING_SRC) $(ENGINE_SRC) $(LIBFLAG)
	$(CC) $(KQ_CFLAGS) $(LUA_CFLAGS) -o build-debug/kqtest.so \
		csrc/testing/kqtest.c $(LIBFLAG)
	$(BUSTED) $(BUSTED_LUA) --cpath="./build-debug/?.so"
	$(MAKE) -f tests/c/Makefile check-debug

# ---- memory safety --------------------------------------------------------
# The whole suite against a module built with AddressSanitizer and
# UndefinedBehaviorSanitizer.  The interpreter is not instrumented, so the
# runtimes are preloaded; any report makes the run fail.
SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
SAN_ENV = LD_PRELOAD="`$(CC) -print-file-name=libasan.so` \
	`$(CC) -print-file-name=libubsan.so`" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
	LSAN_OPTIONS=suppressions=`pwd`/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Works from a fresh clone: the plain build too (exports_spec reads it),
# and LUA_INIT makes every Lua of $(LUA)'s version that the specs start
# (the examples) load the sanitized module, as check-native does.
check-asan: deps all
	mkdir -p build-asan/kq
	$(CC) $(KQ_CFLAGS) $(SAN_FLAGS) $(LUA_CFLAGS) \
		-o build-asan/kq/core.so $(BINDING_SRC) $(ENGINE_SRC) $(LIBFLAG)
	$(CC) $(KQ_CFLAGS) $(SAN_FLAGS) $(LUA_CFLAGS) \
		-o build-asan/kqtest.so csrc/testing/kqtest.c $(LIBFLAG)
	v=`$(LUA) -e 'io.write(_VERSION)'`; \
	init="if _VERSION == '$$v' then package.preload['kq.core'] = \
		assert(package.loadlib('`pwd`/build-asan/kq/core.so', \
		'luaopen_kq_core')) end"; \
	LUA_INIT="$$init" LUA_INIT_5_2="$$init" LUA_INIT_5_3="$$init" \
	LUA_INIT_5_4="$$init" $(SAN_ENV) $(BUSTED) $(BUSTED_LUA) --cpath="./build-asan/?.so"
	$(MAKE) -f tests/c/Makefile check-asan

# The suite under valgrind memcheck: no error, and nothing definitely or
# indirectly lost (the interpreter frees everything at exit).  Programs the
# specs exec (the examples) run natively; forked children stay traced.
# Debian's valgrind 3.19 does not know pidfd_open, so the EVFILT_PROC specs
# (tagged #pidfd) run under check-asan only.
VALGRIND = valgrind --quiet --error-exitcode=24 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --child-silent-after-fork=yes

check-valgrind: deps all
	ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null; \
	$(VALGRIND) $(LUA) `command -v $(BUSTED)` --ignore-lua --exclude-tags=pidfd
	$(MAKE) -f tests/c/Makefile check-valgrind

# The engine with OS threads sharing a queue, under ThreadSanitizer.
check-threads:
	$(MAKE) -f tests/c/Makefile check-threads

# libFuzzer on the engine and on the Lua argument handling; new finds go to
# fuzz/corpus-tmp, the kept corpus is fuzz/corpus.
FUZZ_SECONDS = 60
fuzz:
	$(MAKE) -f fuzz/Makefile FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz

PHONY_ENGINE = check-layers check-debug
.PHONY: $(PHONY_ENGINE) dist rock check-rock soak fuzz check-threads bench bench-quick all test example examples lint install clean deps check-asan check-valgrind
