// Package faults is Kiln's fault suite: black-box tests that run the
// pipeline's processes (ingest and projector as subprocesses, NATS
// embedded, FerretDB, redis-server) under a workload of acknowledged
// events, inject one fault each — a process killed with SIGKILL, a store
// unreachable or restarted empty, NATS restarted, a burst of far-future
// timestamps — and end by comparing every read model with the set of
// acknowledged ids: no loss, no duplicate.
//
// `make test-faults` runs the whole suite (KILN_FAULTS=1, 60 s outages);
// `make test` runs a fast subset with short outages. `make test-upgrade`
// (KILN_UPGRADE=1) replaces the previous release with this build under
// traffic (upgrade_test.go). `make soak` runs a
// standalone under load for DURATION and prints its RSS, goroutines, open
// files and consumer lag every 10 s. See README.md here.
package faults
