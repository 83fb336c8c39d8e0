module github.com/kilnhq/kiln/cli

go 1.26.0

require (
	github.com/kilnhq/kiln/projector v0.0.0
	github.com/kilnhq/kiln/readmodel v0.0.0
	github.com/kilnhq/kiln/schemas v0.0.0
	github.com/nats-io/nats.go v1.55.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/schollz/progressbar/v3 v3.19.1
	github.com/spf13/cobra v1.10.2
	go.mongodb.org/mongo-driver/v2 v2.10.0
	golang.org/x/term v0.47.0
)

require github.com/cenkalti/backoff/v5 v5.0.3 // indirect

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/kilnhq/kiln/notifier v0.0.0
	github.com/kilnhq/kiln/webhooks v0.0.0
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/santhosh-tekuri/jsonschema/v5 v5.3.1 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	github.com/xdg-go/scram v1.4.0 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	github.com/youmark/pkcs8 v0.0.0-20240726163527-a2c0da244d78 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/kilnhq/kiln/schemas => ../schemas

replace github.com/kilnhq/kiln/readmodel => ../readmodel

replace github.com/kilnhq/kiln/projector => ../projector

replace github.com/kilnhq/kiln/httpserver => ../httpserver

replace github.com/kilnhq/kiln/testsupport => ../testsupport

replace github.com/kilnhq/kiln/ingest => ../ingest

replace github.com/kilnhq/kiln/gateway => ../gateway

replace github.com/kilnhq/kiln/standalone => ../deployments/standalone

replace github.com/kilnhq/kiln/notifier => ../notifier

replace github.com/kilnhq/kiln/webhooks => ../webhooks
