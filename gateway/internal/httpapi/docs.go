package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"

	"github.com/gofiber/fiber/v2"
	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/kilnhq/kiln/schemas/problem"
)

// openAPI is the OpenAPI 3.1 document of every public route. Keep it in step
// with the routes: TestOpenAPIMatchesRoutes fails when either side drifts.
//
//go:embed openapi.json
var openAPI []byte

// docsPage holds the docs page and the script that starts Swagger UI on
// /openapi.json.
//
//go:embed docs
var docsPage embed.FS

// swaggerAssets are the Swagger UI files the docs page loads, from the
// swaggo/files module (the swagger-ui dist, embedded: no CDN at run time).
func swaggerAssets() []string {
	return []string{"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
}

// Docs serves the OpenAPI document and the interactive docs.
type Docs struct {
	// Typed adds the registered event types to the document; nil serves
	// the embedded document as it is.
	Typed *Typed
	// Log is told when the registry does not answer (the embedded
	// document is served then).
	Log    *slog.Logger
	assets map[string]asset // by file name, under /docs/
}

type asset struct {
	body []byte
	etag string
}

func newAsset(b []byte) asset {
	sum := sha256.Sum256(b)
	return asset{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// NewDocs loads the docs assets and checks the OpenAPI document is JSON.
func NewDocs() (*Docs, error) {
	if !json.Valid(openAPI) {
		return nil, errors.New("embedded openapi.json is not valid JSON")
	}
	d := &Docs{assets: map[string]asset{}}
	for _, name := range swaggerAssets() {
		b, err := fs.ReadFile(swaggerfiles.FS, name)
		if err != nil {
			return nil, fmt.Errorf("swagger-ui asset: %w", err)
		}
		d.assets[name] = newAsset(b)
	}
	for _, name := range []string{"index.html", "init.js"} {
		b, err := docsPage.ReadFile("docs/" + name)
		if err != nil {
			return nil, fmt.Errorf("docs asset: %w", err)
		}
		d.assets[name] = newAsset(b)
	}
	return d, nil
}

// OpenAPI handles GET /openapi.json: the embedded document with each
// registered event type's latest schema, as the registry holds it now.
// Without the registry (no JetStream, or NATS not answering) it is the
// embedded document alone.
func (d *Docs) OpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if d.Typed == nil {
		return c.Send(openAPI)
	}
	body, err := d.Typed.document(c.UserContext())
	if err != nil && d.Log != nil {
		d.Log.Warn("openapi.json: schema registry unavailable; serving the document without registered types", "err", err)
	}
	return c.Send(body)
}

// Page handles GET /docs: the Swagger UI page.
func (d *Docs) Page(c *fiber.Ctx) error {
	return d.send(c, "index.html")
}

// Asset handles GET /docs/:file: the page's scripts, styles and icons.
func (d *Docs) Asset(c *fiber.Ctx) error {
	return d.send(c, c.Params("file"))
}

func (d *Docs) send(c *fiber.Ctx, name string) error {
	a, ok := d.assets[name]
	if !ok {
		return problem.New(http.StatusNotFound, "not-found", "Not found", "no docs file "+name)
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = fiber.MIMEOctetStream
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, a.etag)
	if c.Get(fiber.HeaderIfNoneMatch) == a.etag {
		return c.SendStatus(http.StatusNotModified)
	}
	return c.Send(a.body)
}
