# Front door: make, make test, make asan, make demo, make bench, make deps.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all build test asan demo bench deps format clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRF_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

deps:
	bash scripts/install-deps.sh --bench

demo:
	bash scripts/install-deps.sh
	@$(MAKE) --no-print-directory build
	bash scripts/demo.sh $(BUILD)/recfuse

bench: build
	bash scripts/install-deps.sh --bench
	bash bench/run.sh $(BUILD)

format:
	clang-format -i src/*/*.c include/recfuse/*.h tests/*.c

clean:
	rm -rf $(BUILD) build-asan
