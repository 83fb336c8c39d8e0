module github.com/kilnhq/kiln/loadtest

go 1.26.0

require (
	github.com/kilnhq/kiln/schemas v0.0.0
	github.com/nats-io/nats.go v1.55.0
	github.com/valyala/fasthttp v1.51.0
)

require (
	github.com/andybalholm/brotli v1.1.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/santhosh-tekuri/jsonschema/v5 v5.3.1 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/kilnhq/kiln/schemas => ../schemas

replace github.com/kilnhq/kiln/httpserver => ../httpserver

replace github.com/kilnhq/kiln/ingest => ../ingest

replace github.com/kilnhq/kiln/testsupport => ../testsupport
