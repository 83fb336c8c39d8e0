// Package dashboard is Kiln's web dashboard: hand-written ES modules and CSS
// plus a vendored uPlot, embedded in the binary and served by the gateway
// (and so by standalone mode on its one port). There is no build step and
// nothing is fetched from a CDN at run time.
//
// The page is GET /; its files are GET /dashboard/{file}. Every file is
// compressed once when the package loads (gzip and brotli) and served with
// an ETag, so a browser revalidates with a 304 instead of downloading again.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

// static holds the page and its files; vendor/ holds third-party files,
// served under their base names.
//
//go:embed static
var static embed.FS

// indexName is the page, served at / and not under /dashboard/.
const indexName = "index.html"

// contentSecurityPolicy allows the page only its own scripts, styles and
// API: no inline script, no third-party origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// Assets are the dashboard's files, ready to serve.
type Assets struct {
	index *file
	files map[string]*file // by the name under /dashboard/
}

// file is one embedded file with its precomputed encodings.
type file struct {
	ctype         string
	etag          string
	plain, gz, br []byte
}

// New loads and compresses the embedded files.
func New() (*Assets, error) {
	a := &Assets{files: map[string]*file{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := newFile(path.Base(p), b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		name := path.Base(p)
		if p == "static/"+indexName {
			a.index = f
			return nil
		}
		if _, dup := a.files[name]; dup {
			return fmt.Errorf("two dashboard files are named %s", name)
		}
		a.files[name] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if a.index == nil {
		return nil, fmt.Errorf("dashboard: no %s", indexName)
	}
	return a, nil
}

func newFile(name string, b []byte) (*file, error) {
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "text/plain; charset=utf-8"
	}
	sum := sha256.Sum256(b)
	f := &file{ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, plain: b}
	if !compressible(ctype) {
		return f, nil
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	var br bytes.Buffer
	bw := brotli.NewWriterLevel(&br, brotli.DefaultCompression) // level 11 takes seconds at start-up (far more under -race) for a few KiB less
	if _, err := bw.Write(b); err != nil {
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	f.gz, f.br = gz.Bytes(), br.Bytes()
	return f, nil
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") ||
		strings.Contains(ctype, "json") || strings.Contains(ctype, "svg")
}

// Register mounts GET / (the page) and GET /dashboard/:file (its scripts,
// styles and vendored chart library) on r, after the handlers in mw (such
// as request metrics). They are public, like /docs: the page asks for a
// read key itself when the API needs one.
func (a *Assets) Register(r fiber.Router, mw ...fiber.Handler) {
	r.Get("/", append(mw, a.page)...)
	r.Get("/dashboard/:file", append(mw, a.asset)...)
}

// Register mounts the dashboard with the embedded files. The files are
// compiled in, so failing to load them is a bug: it panics.
func Register(r fiber.Router, mw ...fiber.Handler) {
	a, err := New()
	if err != nil {
		panic(err)
	}
	a.Register(r, mw...)
}

func (a *Assets) page(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", contentSecurityPolicy)
	c.Set("Referrer-Policy", "no-referrer")
	return send(c, a.index)
}

func (a *Assets) asset(c *fiber.Ctx) error {
	name := c.Params("file")
	f, ok := a.files[name]
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "no dashboard file "+name)
	}
	return send(c, f)
}

// send writes f in the best encoding the client accepts. Cache-Control
// no-cache makes the browser revalidate every use (the URLs carry no
// version), which costs a 304 when nothing changed.
func send(c *fiber.Ctx, f *file) error {
	c.Set(fiber.HeaderContentType, f.ctype)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, f.etag)
	c.Set("X-Content-Type-Options", "nosniff")
	if f.gz != nil {
		c.Vary(fiber.HeaderAcceptEncoding)
	}
	if match := c.Get(fiber.HeaderIfNoneMatch); match != "" && strings.Contains(match, f.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	body := f.plain
	switch {
	case f.br != nil && accepts(c, "br"):
		c.Set(fiber.HeaderContentEncoding, "br")
		body = f.br
	case f.gz != nil && accepts(c, "gzip"):
		c.Set(fiber.HeaderContentEncoding, "gzip")
		body = f.gz
	}
	return c.Send(body) // fasthttp sends no body to HEAD
}

// accepts reports whether Accept-Encoding lists enc without q=0.
func accepts(c *fiber.Ctx, enc string) bool {
	for _, part := range strings.Split(c.Get(fiber.HeaderAcceptEncoding), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), enc) {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
