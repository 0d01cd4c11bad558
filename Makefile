# kstore: `make run` starts a single node (./kstore-data, 127.0.0.1:7450); `make test` runs every test.
GO        ?= go
BIN       := bin/kstore
GOBIN     := $(shell $(GO) env GOPATH)/bin
PROTOC_GEN_GO_VERSION := v1.36.12
STATICCHECK_VERSION   := v0.8.2

.PHONY: build run cluster cluster-stop test soak test-short proto proto-check lint bench bench-quick bench-readme bench-disk clean

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/kstore

run: build
	./$(BIN) serve --listen-metrics 127.0.0.1:7460

# A local three-node cluster: node N keeps its data in ./kstore-data-N and listens on
# 127.0.0.1:745N (its actor cluster health endpoint on 127.0.0.1:845N); its log is
# kstore-data-N/serve.log. `make cluster-stop` stops it.
CLUSTER_MEMBERS := 1=127.0.0.1:7451,2=127.0.0.1:7452,3=127.0.0.1:7453
cluster: build
	@for i in 1 2 3; do \
		if [ -f kstore-data-$$i/serve.pid ] && kill -0 $$(cat kstore-data-$$i/serve.pid) 2>/dev/null; then \
			echo "node $$i runs already (pid $$(cat kstore-data-$$i/serve.pid))"; continue; fi; \
		mkdir -p kstore-data-$$i; \
		nohup ./$(BIN) serve --node-id $$i --listen 127.0.0.1:745$$i --initial-cluster $(CLUSTER_MEMBERS) \
			--data-dir kstore-data-$$i > kstore-data-$$i/serve.log 2>&1 < /dev/null & echo $$! > kstore-data-$$i/serve.pid; \
	done; \
	for i in 1 2 3; do \
		for t in $$(seq 100); do grep -q ' serving on ' kstore-data-$$i/serve.log && break; \
			kill -0 $$(cat kstore-data-$$i/serve.pid) 2>/dev/null || { cat kstore-data-$$i/serve.log; exit 1; }; sleep 0.1; done; \
	done
	@for t in $$(seq 100); do ./$(BIN) member list --endpoints 127.0.0.1:7451 --timeout 1s 2>/dev/null | grep -q '"leader":true' && break; sleep 0.1; done
	@./$(BIN) member list --endpoints 127.0.0.1:7451,127.0.0.1:7452,127.0.0.1:7453
	@echo 'export KSTORE_ENDPOINTS=127.0.0.1:7451,127.0.0.1:7452,127.0.0.1:7453'

cluster-stop:
	@for i in 1 2 3; do \
		f=kstore-data-$$i/serve.pid; [ -f $$f ] || continue; p=$$(cat $$f); \
		if kill $$p 2>/dev/null; then \
			for t in $$(seq 100); do kill -0 $$p 2>/dev/null || break; sleep 0.1; done; \
			echo "node $$i stopped"; fi; \
		rm -f $$f; \
	done

# The whole suite under the race detector, plus the check that generated code is current, plus
# what cannot run under it: the fault tests (real servers under partitions, crashes and slow
# links, every history checked for linearizability), which run beside the race pass since they
# mostly wait on their fault schedule; the benchmark harness's module (bench/: every scenario for
# about a second against kstore and etcd, so the harness cannot rot), built beside the race pass
# at a lower priority (etcd's server is most of it) and run after it, since it drives servers
# flat out and a starved loader would time its own requests out; the watch
# isolation comparison, which measures timing; and the guard tests that need two protoactor
# remotes in one process (remote.Start sets gRPC's global logger, which the first remote's
# goroutines read unsynchronised); and the parser of $KSTORE_FAILPOINTS, which exists only in a
# -tags failpoints build.
test: proto-check
	$(GO) vet ./...
	@$(GO) test -count=1 -v -timeout 15m ./cmd/kstore/internal/faults/ > $(FAULTS_LOG) 2>&1 & faults=$$!; \
	(cd bench && nice -n 10 $(GO) vet ./... && nice -n 10 $(GO) test -count=1 -run '^$$' ./...) > $(BENCH_LOG) 2>&1 & benchbuild=$$!; \
	$(GO) test -race -count=1 -timeout 20m ./...; race=$$?; \
	wait $$faults; f=$$?; grep -v '^=== ' $(FAULTS_LOG); rm -f $(FAULTS_LOG); \
	wait $$benchbuild && (cd bench && $(GO) test -count=1 -timeout 10m ./...) >> $(BENCH_LOG) 2>&1; b=$$?; \
	grep -v '^ok .*no tests to run' $(BENCH_LOG); rm -f $(BENCH_LOG); \
	echo "fault tests: exit $$f; benchmark harness tests: exit $$b"; [ $$race -eq 0 ] && [ $$f -eq 0 ] && [ $$b -eq 0 ]
	$(GO) test -count=1 -timeout 5m -run 'TestSlowWatcherSlowsNobody|TestGuardRefusesHostileBatches|TestGuardKeepsRemoteWatch' ./actors
	$(GO) test -tags failpoints -count=1 -run 'TestParseFailpoints' ./cmd/kstore

FAULTS_LOG := .faults-test.log
BENCH_LOG := .bench-test.log

# The fault tests for longer (SOAK=10m by default; needs root, ip and iptables), with a summary
# table at the end: rounds, operations, faults injected, violations. Porcupine's visualization
# of a history that is not linearizable goes to cmd/kstore/internal/faults/out/.
SOAK ?= 10m
soak:
	@$(GO) test -count=1 -v -timeout 0 -run 'TestFaults|TestCheckerCatchesStaleReads' ./cmd/kstore/internal/faults/ -args -soak $(SOAK) > $(FAULTS_LOG) 2>&1; \
	code=$$?; grep -v '^=== ' $(FAULTS_LOG); rm -f $(FAULTS_LOG); exit $$code

test-short:
	$(GO) test -short -count=1 ./...
	cd bench && $(GO) test -short -count=1 ./...

$(GOBIN)/protoc-gen-go:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

# Regenerates messages/kstore.pb.go from messages/kstore.proto (needs protoc: apt-get install protobuf-compiler).
proto: $(GOBIN)/protoc-gen-go
	PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=paths=source_relative messages/kstore.proto

# Fails when the committed generated code differs from what `make proto` makes.
proto-check:
	@if ! command -v protoc >/dev/null; then \
		echo "proto-check: skipped, protoc is not installed (apt-get install protobuf-compiler; .ci/run installs it)"; \
	else \
		$(MAKE) --no-print-directory $(GOBIN)/protoc-gen-go >/dev/null && \
		tmp=$$(mktemp -d) && \
		PATH="$(GOBIN):$$PATH" protoc --go_out=$$tmp --go_opt=paths=source_relative messages/kstore.proto && \
		if diff -u messages/kstore.pb.go $$tmp/messages/kstore.pb.go >/dev/null; then \
			echo "proto-check: messages/kstore.pb.go is current"; rm -rf $$tmp; \
		else \
			echo "proto-check: messages/kstore.pb.go is stale: run make proto and commit it"; rm -rf $$tmp; exit 1; \
		fi; \
	fi

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd bench && $(GO) vet ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The benchmark harness (bench/, a Go module of its own so that etcd's server stays out of
# kstore's go.mod): kstore and etcd 3.7.3 side by side, one member and three, every scenario;
# one JSON line per result on stdout, a table at the end, results.json, results.md and plots in
# bench/out/. BENCH_ARGS adds flags (cd bench && go run . --help lists them).
# bench-readme runs the standard suite, keeps its output in bench/results/ (committed: the
# README shows its put plot) and puts its tables into README.md, section Performance.
BENCH_OUT ?= out
bench: build
	cd bench && $(GO) run . --suite standard --kstore ../$(BIN) --out $(BENCH_OUT) $(BENCH_ARGS)

bench-quick: build
	cd bench && $(GO) run . --suite quick --kstore ../$(BIN) --out $(BENCH_OUT) $(BENCH_ARGS)

bench-readme: build
	cd bench && $(GO) run . --suite standard --kstore ../$(BIN) --out results --readme ../README.md $(BENCH_ARGS)

# Disk use of a node under a 10-minute overwrite loop of 1.2 MiB objects (value-log GC at work).
bench-disk: build
	cd bench && $(GO) run ./cmd/diskbench --kstore ../$(BIN)

clean:
	rm -rf bin
