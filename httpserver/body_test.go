package httpserver_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
)

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func deflated(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func brotlied(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := brrr.NewWriter(&buf, 5)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// Issue 21 item 3: the limit holds on the decoded body, one layer, and a
// decoding error is answered in Kiln's words.
func TestBodyDecodesOneLayerWithinTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 * 1024
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: limit, Log: slog.New(slog.DiscardHandler)})
	app.Post("/", func(c *fiber.Ctx) error {
		b, err := httpserver.Body(c)
		if err != nil {
			return err
		}
		return c.Send(b)
	})
	doc := []byte(`{"hello":"world"}`)
	bomb := make([]byte, limit+1)
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		status         int
		want           []byte // the decoded body, on 200
	}{
		{"none", "", doc, 200, doc},
		{"identity", "identity", doc, 200, doc},
		{"gzip", "gzip", gzipped(doc), 200, doc},
		{"gzip upper case", "GZIP", gzipped(doc), 200, doc},
		{"x-gzip", "x-gzip", gzipped(doc), 200, doc},
		{"deflate", "deflate", deflated(doc), 200, doc},
		{"br", "br", brotlied(doc), 200, doc},
		{"exactly the limit", "gzip", gzipped(bomb[:limit]), 200, bomb[:limit]},
		{"gzip bomb", "gzip", gzipped(bomb), 413, nil},
		{"deflate bomb", "deflate", deflated(bomb), 413, nil},
		{"br bomb", "br", brotlied(bomb), 413, nil},
		{"two layers", "gzip, gzip", gzipped(gzipped(doc)), 415, nil},
		{"unknown", "compress", doc, 415, nil},
		{"not gzip", "gzip", doc, 400, nil},
		{"truncated gzip", "gzip", gzipped(doc)[:20], 400, nil},
		{"not deflate", "deflate", doc, 400, nil},
		{"not br", "br", []byte("\xff\xff\xff\xff not brotli"), 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("POST", "/", bytes.NewReader(tc.body))
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := app.Test(req, -1)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, "%s", got)
			if tc.status == 200 {
				require.Equal(t, tc.want, got)
				return
			}
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			var p struct {
				Detail string
				Errors []struct{ Field string }
			}
			require.NoError(t, json.Unmarshal(got, &p))
			require.Equal(t, "Content-Encoding", p.Errors[0].Field)
			for _, libraryWords := range []string{"gzip: ", "zlib: ", "brotli: ", "flate: ", "unexpected EOF"} {
				require.False(t, strings.Contains(p.Detail, libraryWords), "the decoder's words: %s", p.Detail)
			}
		})
	}
}
