# The two commands of the README:
#   make run    install what is missing, build, and build a fresh PKI under ./cluster
#   make test   install what is missing, then the whole ctest suite, normally and under ASan+UBSan
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: all build build-asan run test test-normal test-asan bench bench-apiserver clean

all: build

build:
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan:
	@scripts/deps.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKPKI_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	@scripts/run.sh $(BUILD)/kpki

test: test-normal test-asan

test-normal:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: build-asan
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@bench/init-tree.sh $(BUILD)/kpki

# kpki apiserver against nginx over mutual TLS, with kpki-loadgen (docs/benchmarks.md).
bench-apiserver: build
	@scripts/deps.sh bench
	@bench/apiserver-tls.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
