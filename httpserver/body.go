package httpserver

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	brrr "github.com/molecule-man/go-brrr"

	"github.com/kilnhq/kiln/schemas/problem"
)

// Body returns the request body as a handler must read it: the bytes the
// client sent, decoded from their Content-Encoding when there is one (gzip,
// deflate or br, one layer), and never more than the app's BodyLimit after
// decoding. Every handler that reads a body calls it instead of
// fiber.Ctx.Body, which inflates every listed encoding with no limit.
//
// Errors are problem details naming Content-Encoding: 415 for an encoding
// Kiln does not decode (or more than one layer), 413 when the decoded body
// is over the limit, 400 when the bytes are not what the encoding says.
func Body(c *fiber.Ctx) ([]byte, error) {
	raw := c.Request().Body()
	enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)))
	if enc == "" || enc == "identity" {
		return raw, nil
	}
	limit := c.App().Config().BodyLimit
	var (
		r   io.Reader
		err error
	)
	switch enc {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(raw))
	case "br":
		r = brrr.NewReader(bytes.NewReader(raw))
	default:
		return nil, unsupportedEncoding(enc)
	}
	if err != nil {
		return nil, undecodable(enc)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case len(out) > limit:
		return nil, encodingProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			"decodes to more than "+strconv.Itoa(limit)+" bytes, the body limit")
	case err != nil:
		return nil, undecodable(enc)
	}
	return out, nil
}

// unsupportedEncoding is the 415 for an encoding Kiln does not decode.
func unsupportedEncoding(enc string) error {
	msg := "must be gzip, deflate, br or identity"
	if strings.Contains(enc, ",") {
		msg = "must be one encoding (gzip, deflate, br or identity), not several"
	}
	return encodingProblem(http.StatusUnsupportedMediaType, "unsupported-content-encoding", "Unsupported content encoding", msg)
}

// undecodable is the 400 for a body that is not what its encoding says;
// the decoder's own words stay out of it.
func undecodable(enc string) error {
	return encodingProblem(http.StatusBadRequest, "undecodable-body", "Body not decodable",
		"is "+enc+" but the body is not valid "+enc+" data")
}

// encodingProblem is a problem with the Content-Encoding header.
func encodingProblem(status int, slug, title, msg string) *problem.Details {
	p := problem.New(status, slug, title, fiber.HeaderContentEncoding+" "+msg)
	p.Errors = []problem.FieldError{{Field: fiber.HeaderContentEncoding, Message: msg}}
	return p
}
