# Kiln: the two commands are `make run` and `make test`.
GO ?= go

.PHONY: run run-deps test test-deps check bench build build-linux release clean test-faults test-fuzz soak test-upgrade test-cluster

## run: Kiln standalone (kiln run) on http://localhost:8080 (PORT to change it), data in ./data; installs redis-server when missing
run: run-deps
	$(GO) run ./cli/cmd/kiln run

## run-deps: install redis-server when missing (sudo when not root); without it kiln run falls back to a slow in-process Redis
run-deps:
	@bash scripts/install-packages redis-server || \
		echo "make run: could not install redis-server; kiln run falls back to the slow in-process Redis (its log says so)" >&2

## test: installs what is missing (redis-server, chromium, npm test packages), gofmt + go vet, then every test of every module, with the race detector
test: test-deps check
	$(GO) test -race -count=1 -timeout 20m work

## test-faults: the whole fault suite (faults/; 60 s outages, KILN_FAULT_OUTAGE to change): one {"fault":…} line per fault
test-faults:
	KILN_FAULTS=1 $(GO) test -count=1 -v -timeout 60m ./faults/

## test-upgrade: the previous release's kiln (faults/upgrade_test.go previousRelease, built from git history) replaced by this build under traffic: each role in turn, then a standalone all at once
test-upgrade:
	KILN_UPGRADE=1 $(GO) test -count=1 -v -run TestUpgrade -timeout 30m ./faults/

## test-cluster: faults on a loopback cluster (3 NATS nodes R3, Redis Cluster 3+3 or Sentinel, FerretDB, two processes of every role; faults/cluster_*_test.go): one {"fault":…} line per fault
test-cluster: test-deps
	KILN_CLUSTER=1 $(GO) test -race -count=1 -v -run '^TestCluster' -timeout 60m ./faults/

## test-fuzz: each fuzz target for FUZZTIME (default 60s), one go test per target (FUZZ_TARGETS: package:Target); make test runs their seeds
FUZZTIME ?= 60s
FUZZ_TARGETS = \
	./webhooks/signature:FuzzVerify \
	./webhooks/signature:FuzzLegacyVerify \
	./webhooks/inbound:FuzzHandler \
	./webhooks/inbound:FuzzMap \
	./webhooks/adminapi:FuzzDecodeEndpoint \
	./webhooks/adminapi:FuzzDeliveryQuery \
	./realtime/socketio:FuzzChatDecoder \
	./readmodel:FuzzRenderEventMatchesTheHistory \
	./schemas:FuzzDecodeEventMatchesUnmarshal
test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test -count=1 -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

## soak: a standalone under load for DURATION (default 10m), printing RSS, goroutines, open files and lag every 10 s
DURATION ?= 10m
soak:
	KILN_SOAK_DURATION=$(DURATION) $(GO) test -count=1 -v -run TestSoak -timeout 0 ./faults/

## test-deps: install what the tests need and this machine lacks (sudo when not root)
test-deps:
	@bash scripts/install-test-deps

## check: formatting and vet across the workspace
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet work

## bench: start a throwaway standalone as make run starts it (redis-server installed when missing) and run the load tool against it
bench: run-deps
	bash loadtest/bench.sh

## build: the static kiln binary in ./bin
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cli/cmd/kiln

# Kiln's commands as name=package: what build-linux and release build (and
# the Dockerfile and .goreleaser.yaml; deployments/release_test.go checks).
# One binary: kiln run, kiln serve <role>, the operations commands.
BINARIES := kiln=./cli/cmd/kiln
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

## build-linux: the kiln binary, static (CGO_ENABLED=0), for linux in ./bin/linux
build-linux:
	@set -e; for b in $(BINARIES); do \
		echo "bin/linux/$${b%%=*}"; \
		CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/linux/$${b%%=*} $${b#*=}; \
	done

## release: goreleaser if installed (binaries, archives, images); else linux/amd64+arm64 archives in ./dist
release:
	@set -e; if command -v goreleaser >/dev/null 2>&1; then \
		if git describe --exact-match --tags >/dev/null 2>&1; then goreleaser release --clean; \
		else goreleaser release --snapshot --clean; fi; \
	else \
		rm -rf dist; \
		for arch in amd64 arm64; do \
			dir=kiln_$(VERSION)_linux_$$arch; \
			for b in $(BINARIES); do \
				echo "dist/$$dir/$${b%%=*}"; \
				CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/$$dir/$${b%%=*} $${b#*=}; \
			done; \
			tar -czf dist/$$dir.tar.gz -C dist $$dir; \
		done; \
		cd dist && sha256sum *.tar.gz > checksums.txt; \
	fi

clean:
	rm -rf bin dist
