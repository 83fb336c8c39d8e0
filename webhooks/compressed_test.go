package webhooks_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Issue 21 item 3: the admin API holds the body limit (1 MiB here) on the
// decoded body, and takes a gzipped endpoint within it.
func TestAdminAPICompressedBodyHoldsTheLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	gz := func(b []byte) *bytes.Reader {
		var buf bytes.Buffer
		w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		require.NoError(t, err)
		_, err = w.Write(b)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return bytes.NewReader(buf.Bytes())
	}
	post := func(body *bytes.Reader, out any) int {
		req, err := http.NewRequest(http.MethodPost, h.url+"/webhook-endpoints", body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		return decodeResp(t, req, out)
	}
	var p struct {
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	require.Equal(t, http.StatusRequestEntityTooLarge, post(gz(make([]byte, 4<<20)), &p))
	require.Equal(t, "Content-Encoding", p.Errors[0].Field)
	var ep endpointView
	require.Equal(t, http.StatusCreated, post(gz([]byte(`{"url":"https://a.example/hook"}`)), &ep))
	require.NotEmpty(t, ep.ID)
}
