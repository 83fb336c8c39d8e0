# Kiln: the two commands are `make run` and `make test`.
GO ?= go

.PHONY: run test check bench build clean

## run: Kiln standalone on http://localhost:8080 (PORT to change it), data in ./data
run:
	$(GO) run ./deployments/standalone/cmd/kiln-standalone

## test: gofmt + go vet, then every test of every module, with the race detector
test: check
	$(GO) test -race -count=1 -timeout 20m work

## check: formatting and vet across the workspace
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet work

## bench: start a throwaway standalone and run the load tool against it
bench:
	bash loadtest/bench.sh

## build: static binaries in ./bin
build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./ingest/cmd/ingest ./deployments/standalone/cmd/kiln-standalone

clean:
	rm -rf bin
