# The table of contents of what can be run here. Each target is one
# command a user could type; `make help` lists them. CI (.ci/run) runs the
# `ci` gates on a clean clone; each script installs what it needs.

SEGCORE ?= target/debug/segcore

.PHONY: help run test lint ci debug-build memccapable compat diff metrics soak hostile failover replicated \
	bench bench-ab bench-memory bench-policies bench-conns bench-tls bench-restart bench-cluster bench-replicated \
	idle-cpu forwarding fuzz cluster modgraph

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

run: ## build and start the server with its defaults (127.0.0.1:11211, 64 MB, every core)
	cargo run --release -p segcore -- -u "$$(id -un)"

test: ## the test command
	cargo test --workspace

lint: ## rustfmt and clippy as CI runs them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

ci: ## every gate of .ci/run
	.ci/run

debug-build:
	cargo build -q -p segcore

memccapable: debug-build ## libmemcached's conformance checks
	scripts/ci/memccapable.sh $(SEGCORE)

compat: ## real clients: pymemcache and python-binary-memcached
	scripts/ci/compat-clients.sh

diff: debug-build ## edge-case request sequences against memcached 1.6.18 and 1.6.38, byte for byte
	scripts/ci/diff-vs-memcached.sh $(SEGCORE)
	scripts/ci/diff-vs-memcached.sh --reference 1.6.38 $(SEGCORE)

metrics: debug-build ## /metrics through promtool's linter
	scripts/ci/check-metrics.sh $(SEGCORE)

soak: debug-build ## 2 minutes of verified load with hostile clients (MINUTES=30 for the long run)
	scripts/ci/soak.sh $(or $(MINUTES),2) $(SEGCORE)

hostile: debug-build ## the hostile-client suite (COMPARE=--compare records memcached too)
	scripts/ci/hostile.sh $(SEGCORE) $(COMPARE)

failover: debug-build ## twemproxy with a node killed, restarted empty and stalled
	scripts/ci/cluster-failover.sh $(SEGCORE)
	scripts/ci/cluster-failover.sh $(SEGCORE) --per-core

replicated: debug-build ## replicated behind memcached's proxy: node/zone kills, read repair, zone comparison
	scripts/ci/cluster-replicated.sh $(SEGCORE)

bench: ## segcore against memcached, same run (throughput, CPU/request, hit ratio, bytes/item)
	scripts/bench/bench-vs-memcached.sh

bench-ab: ## two builds side by side: make bench-ab OLD=... NEW=...
	scripts/bench/bench-ab.sh $(OLD) $(NEW)

bench-memory: ## resident memory, growth latency and density against memcached
	scripts/bench/bench-memory.sh

bench-policies: ## hit ratio of every eviction policy and memcached
	scripts/bench/bench-policies.sh

bench-conns: ## connection churn, idle connections and half-sent values against memcached
	scripts/bench/bench-conns.sh

bench-tls: ## TLS against memcached
	scripts/bench/bench-tls.sh

bench-restart: ## warm restart time and what comes back
	scripts/bench/bench-restart.sh

bench-cluster: ## shared port against per-core endpoints behind twemproxy
	scripts/bench/bench-cluster.sh

bench-replicated: ## through memcached's proxy (2 zones) vs nutcracker vs direct; hot-key spread
	scripts/bench/bench-replicated.sh

idle-cpu: ## idle CPU against memcached, no clients and 1,000 idle connections
	scripts/bench/idle-cpu.sh

forwarding: ## cross-core forwarding throughput
	scripts/bench/forwarding-throughput.sh

package: ## the .deb (man page, completions, systemd unit, /etc/segcore.conf) into target/debian/
	scripts/tools/package.sh

fuzz: ## the protocol fuzzers (SECONDS=60)
	scripts/tools/fuzz.sh $(SECONDS)

cluster: ## a demo cluster of nodes behind twemproxy
	scripts/tools/cluster.sh

modgraph: ## the runtime's import graph: floors, cycles, uses of an ancestor
	python3 scripts/tools/modgraph.py engine/src/runtime
