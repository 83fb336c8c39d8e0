module github.com/kilnhq/kiln/readmodel

go 1.26.0

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/kilnhq/kiln/schemas v0.0.0
	github.com/kilnhq/kiln/testsupport v0.0.0
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.mongodb.org/mongo-driver/v2 v2.10.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace github.com/kilnhq/kiln/schemas => ../schemas

replace github.com/kilnhq/kiln/testsupport => ../testsupport
