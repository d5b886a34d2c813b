# The README's commands. Every target installs what it needs first (tools/bootstrap.sh).
JOBS ?= 2
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
CMAKE_FLAGS ?=
# Compiler warnings as errors (CMake's SSEGW_WERROR): on for the suites (make test, test-sanitize,
# test-tsan), so that CI (.ci/run: make test) fails on a warning; `make build` keeps what the
# build tree has (off in a new one). WERROR=OFF or ON on the command line wins.
WERROR ?=
test test-sanitize test-tsan: WERROR = ON
werror = $(if $(WERROR),-DSSEGW_WERROR=$(WERROR))

.PHONY: all bootstrap build run test test-sanitize test-tsan fuzz node-deps node18 clean format bench

all: build

bootstrap:
	@tools/bootstrap.sh

build: bootstrap
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(werror) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# The gateway with the mock LLM behind it (127.0.0.1:9000), so the demo page at
# http://127.0.0.1:8080/ streams answers with nothing else installed.
run: build
	@$(BUILD_DIR)/bin/ssegw-mock-llm --listen 127.0.0.1:9000 & mock=$$!; \
	  trap 'kill $$mock 2>/dev/null' EXIT INT TERM; \
	  $(BUILD_DIR)/bin/ssegw --config config/gateway.yaml --listen 127.0.0.1:8080

# The whole suite, then the same suite under AddressSanitizer and UndefinedBehaviorSanitizer,
# then the multi-worker tests under ThreadSanitizer.
test: bootstrap node-deps node18 build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)
	$(MAKE) test-sanitize WERROR=$(WERROR)
	$(MAKE) test-tsan WERROR=$(WERROR)

# Not again under the sanitizers: the checks of the repository's text, which build nothing, and
# three cases that take 45 to 55 s each there (megabytes of events through a -O0 build, and a
# budget's real one-minute window) for paths that the Release run and smaller cases cover.
ASAN_SKIP = ^(docs|layers|tests|docker): |memory limits: 512 x 1 MiB|memory limits: history.max_total_bytes holds across|budgets: an exhausted key is served again
# The integration tests link no gateway code: build/'s run against the ASan gateway and mock
# (SSEGW_TEST_BIN; SSEGW_TEST_SANITIZED tells them RSS bounds do not hold there), as test-tsan
# does, so they are not compiled again with ASan.
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-sanitize: bootstrap build
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DSSEGW_SANITIZER=address $(werror) \
	  $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j$(JOBS)
	cd $(ASAN_DIR) && $(ASAN_ENV) ctest --output-on-failure -j$(JOBS) -E '$(ASAN_SKIP)'
	cd $(BUILD_DIR) && $(ASAN_ENV) SSEGW_TEST_BIN=$(abspath $(ASAN_DIR))/bin/ssegw \
	  SSEGW_TEST_SANITIZED=address ctest --output-on-failure -j$(JOBS) -R '^integration:' -E '$(ASAN_SKIP)'

# npm packages of the real-client tests (tests/node), from the npm registry, pinned by the lock.
node-deps: bootstrap
	@cd tests/node && { [ node_modules/.package-lock.json -nt package-lock.json ] || \
	  npm ci --no-audit --no-fund --loglevel=error; }

# Debian 12's own Node.js 18, unpacked (not installed) for the test 'node: real clients on Debian's
# Node 18', so that every run proves the suite on a stock Debian 12 even where node is newer.
node18: bootstrap
	@tools/debian_node18.sh $(BUILD_DIR)/debian-node18

# The threaded parts under TSan: the mailbox's lock-free queue under contention and the
# cross-thread wake-up (in-process), then the multi-worker gateway (workers: 2 and auto,
# cross-worker channels, drain, HTTP/2 streams of one connection on channels of both workers),
# driven by the Release build's integration tests (they link no gateway code): only the gateway,
# the mock and thread_tests are built with TSan.
test-tsan: bootstrap build
	cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSSEGW_SANITIZER=thread $(werror) \
	  $(CMAKE_FLAGS)
	cmake --build $(TSAN_DIR) -j$(JOBS) --target ssegw ssegw-mock-llm thread_tests
	cd $(TSAN_DIR) && TSAN_OPTIONS=halt_on_error=1 ./bin/thread_tests -tc='server/mailbox*,net/handles: an async*'
	TSAN_OPTIONS=halt_on_error=1 SSEGW_TEST_BIN=$(abspath $(TSAN_DIR))/bin/ssegw \
	  SSEGW_TEST_SANITIZED=thread \
	  $(BUILD_DIR)/bin/integration_tests \
	  -tc='workers*,shutdown*,upstream: a source on workers*,upstream: a resumable answer resumes on workers*,backplane: on workers*,http2: with workers*,multi-channel: resume*,tls listener: SIGHUP*'

# ssegw against Nchan and Pushpin on loopback (installs them when missing); writes the medians into
# bench/RESULTS.md. About 40 minutes; QUICK=1 for a short run (bench/compare.sh lists the knobs).
bench: build
	BIN=$(BUILD_DIR)/bin bench/compare.sh

# libFuzzer targets (clang), each for FUZZ_SECONDS (default 60); make test only replays the corpora.
fuzz: bootstrap
	tests/fuzz/run_fuzzers.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR)
