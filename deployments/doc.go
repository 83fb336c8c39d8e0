// Package deployments holds Kiln's production deployment files — Dockerfiles
// (docker/), NATS server configs (nats/), Kubernetes manifests (k8s/) — and
// the tests that keep them honest: every service setting is documented and
// deployed (parity_test.go), the NATS configs load (natsconf_test.go), an R3
// JetStream cluster loses no acknowledged event when its stream leader dies
// (cluster_test.go), and every binary builds static for Linux
// (build_test.go). The one-process runner (`kiln run`) is app/standalone.
package deployments
