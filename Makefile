# Gossip Glomers toolbox. `make help` lists the targets.

CARGO ?= cargo
RUN := scripts/run-challenge.sh

# Fault and load settings passed to every challenge target (empty = the
# challenge's official value). See scripts/run-challenge.sh.
export NEMESIS NEMESIS_INTERVAL LATENCY LATENCY_DIST TIME_LIMIT RATE NODE_COUNT CONCURRENCY SEED RUNNER MAELSTROM EXTRA_FLAGS

.PHONY: help build test bench fuzz maelstrom test-echo test-unique-ids test-1 test-2

help:
	@echo "make build            release build of every binary"
	@echo "make test             the whole test suite (what CI runs)"
	@echo "make bench            benchmarks (echo throughput, ...)"
	@echo "make fuzz             every fuzz target for FUZZ_SECONDS (default 60; needs nightly + cargo-fuzz)"
	@echo "make maelstrom        download Maelstrom $(MAELSTROM_VERSION) (needs internet and Java)"
	@echo "make test-echo        challenge 1 (also: test-1)"
	@echo "make test-unique-ids  challenge 2 (also: test-2)"
	@echo "Variables: NEMESIS=partition NEMESIS_INTERVAL= LATENCY= LATENCY_DIST= TIME_LIMIT= RATE="
	@echo "           NODE_COUNT= CONCURRENCY= SEED= RUNNER=maelstrom|glomers"

build:
	$(CARGO) build --release

test:
	$(CARGO) test

bench: build
	$(CARGO) bench

FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

MAELSTROM_VERSION ?= 0.2.4
maelstrom:
	MAELSTROM_VERSION=$(MAELSTROM_VERSION) scripts/fetch-maelstrom.sh

test-echo test-1: build
	$(RUN) 1 echo -w echo --node-count 1 --time-limit 10

test-unique-ids test-2: build
	$(RUN) 2 unique-ids -w unique-ids --time-limit 30 --rate 1000 --node-count 3 --availability total --nemesis partition
