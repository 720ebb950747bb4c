# One entry point: `make run`, `make test`, `make build`, `make bench`.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds per fuzz target: `make fuzz` (default 60) and the bounded run inside `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 20
JOBS ?= $(shell nproc)

.PHONY: all deps build build-asan build-fuzz run test test-release test-asan test-fuzz fuzz bench format clean install

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DDLN_WITH_TORCH=ON

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

# AddressSanitizer + UBSan, assertions on (no NDEBUG), optimized enough to stay quick.
$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DDLN_SANITIZE=ON

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j $(JOBS)

# libFuzzer targets (fuzz/, docs/reliability.md): clang, ASan + UBSan, library coverage-instrumented.
$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DDLN_FUZZ=ON -DDLN_BUILD_TESTS=OFF -DDLN_PYTHON=OFF

build-fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) -j $(JOBS) dln_fuzzers

fuzz: build-fuzz
	scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS)

run: build
	$(BUILD)/dln demo

test: test-release test-asan test-fuzz

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

test-fuzz: build-fuzz
	scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_TEST_SECONDS)

bench: build
	@scripts/install-deps --bench
	/usr/bin/python3 bench/bench_completion.py

# The CLI to <prefix>/bin and the Python package to Python's dist-packages (docs/python.md);
# PREFIX defaults to /usr/local.
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
