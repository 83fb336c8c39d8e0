package webhooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func toJSON(t *testing.T, v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func decodeResp(t *testing.T, req *http.Request, out any) int {
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode
}
