module github.com/kilnhq/kiln/dashboard

go 1.26.0

require (
	github.com/andybalholm/brotli v1.1.0
	github.com/gofiber/fiber/v2 v2.52.15
)
