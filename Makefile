# Gossip Glomers toolbox. `make help` lists the targets.
#
# The challenges' flags live in one place, the registry (src/challenges.rs):
# every challenge target calls `glomers challenge ID`, which knows them and
# runs either real Maelstrom or our runner.

CARGO ?= cargo
GLOMERS := target/release/glomers

# Fault and load settings for the challenge targets; empty means the
# challenge's official value. NEMESIS=none removes the nemesis.
NEMESIS ?=
NEMESIS_INTERVAL ?=
LATENCY ?=
LATENCY_DIST ?=
TIME_LIMIT ?=
RATE ?=
NODE_COUNT ?=
CONCURRENCY ?=
SEED ?=
EXTRA_FLAGS ?=
# auto (real Maelstrom when it and Java are installed, else ours), maelstrom,
# glomers or sim.
RUNNER ?= auto
# Non-empty: short runs (3 s) whose figures are not kept in maelstrom-results/.
QUICK ?=
# For `make challenges`: only these challenges, comma separated (e.g. 3a,3b),
# and how many runs at a time (publish figures from 1: runs share the cores).
ONLY ?=
JOBS ?=
# The Maelstrom launcher (default .maelstrom/maelstrom/maelstrom).
MAELSTROM ?=
RESULTS_DIR ?= maelstrom-results

# $(call flag,VAR,--flag): "--flag $(VAR)" when VAR is set.
flag = $(if $(strip $($(1))),$(2) $(strip $($(1))))
TEST_FLAGS = $(call flag,NEMESIS,--nemesis) $(call flag,NEMESIS_INTERVAL,--nemesis-interval) \
	$(call flag,LATENCY,--latency) $(call flag,LATENCY_DIST,--latency-dist) \
	$(call flag,TIME_LIMIT,--time-limit) $(call flag,RATE,--rate) \
	$(call flag,NODE_COUNT,--node-count) $(call flag,CONCURRENCY,--concurrency) \
	$(call flag,SEED,--seed) $(EXTRA_FLAGS)
RUNNER_FLAGS = --runner $(RUNNER) $(if $(QUICK),--quick) $(call flag,MAELSTROM,--maelstrom)

.PHONY: help build test bench fuzz maelstrom challenges challenges-quick challenges-sim results-table report

help:
	@echo "make build              release build of every binary"
	@echo "make test               the whole test suite (what CI runs), including a quick run of every challenge"
	@echo "make bench              benchmarks (echo throughput, checkers)"
	@echo "make fuzz               every fuzz target for FUZZ_SECONDS (default 60; needs nightly + cargo-fuzz)"
	@echo "make maelstrom          download Maelstrom $(MAELSTROM_VERSION) (needs internet and Java)"
	@echo ""
	@echo "make test-ID            one sub-challenge with its official flags; ID is one of"
	@echo "                        1 2 3a 3b 3c 3d 3e 4 5a 5b 5c 6a 6b 6c lin-kv, or a name:"
	@echo "                        test-echo test-unique-ids test-broadcast (= 3c) test-g-counter"
	@echo "                        test-kafka (= 5c) test-txn (= 6c) test-lin-kv, test-broadcast-efficient-2, ..."
	@echo "                        ('$(GLOMERS) challenges' lists every id, name, flag and target)"
	@echo "make challenges         every sub-challenge, with and without partitions: a table,"
	@echo "                        summaries and README in $(RESULTS_DIR)/, HTML report $(RESULTS_DIR)/index.html"
	@echo "make challenges-quick   the same with 3 s runs (results in store/results-quick/)"
	@echo "make challenges-sim     the same in the simulator (built-in solutions, virtual time)"
	@echo "make results-table      regenerate $(RESULTS_DIR)/README.md from the summaries"
	@echo "make report             regenerate $(RESULTS_DIR)/index.html from the summaries"
	@echo ""
	@echo "Variables: NEMESIS=partition|none NEMESIS_INTERVAL= LATENCY= LATENCY_DIST= TIME_LIMIT= RATE="
	@echo "           NODE_COUNT= CONCURRENCY= SEED= EXTRA_FLAGS= RUNNER=auto|maelstrom|glomers|sim"
	@echo "           QUICK=1 ONLY=3a,3b JOBS=1 MAELSTROM=path/to/maelstrom"

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

# One sub-challenge: `make test-3e`, `make test-broadcast NEMESIS=partition`.
# Quick runs are not recorded in $(RESULTS_DIR)/.
test-%: build
	$(GLOMERS) $(strip challenge $* $(RUNNER_FLAGS) $(if $(QUICK),,--results-dir $(RESULTS_DIR)) $(TEST_FLAGS))

challenges: build
	$(GLOMERS) $(strip matrix $(RUNNER_FLAGS) $(call flag,ONLY,--only) $(call flag,JOBS,--jobs) \
		$(if $(QUICK),,--results-dir $(RESULTS_DIR)) $(TEST_FLAGS))

challenges-quick:
	$(MAKE) challenges QUICK=1 JOBS=$(or $(JOBS),3)

challenges-sim: build
	$(GLOMERS) $(strip matrix --sim $(call flag,ONLY,--only) $(TEST_FLAGS))

results-table: build
	$(GLOMERS) results table --dir $(RESULTS_DIR)

report: build
	$(GLOMERS) results html --dir $(RESULTS_DIR)
