package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)

	require.NoError(t, run([]string{srv.URL + "/readyz"}))
	status = http.StatusServiceUnavailable
	require.ErrorContains(t, run([]string{srv.URL + "/readyz"}), "503")
	require.Error(t, run(nil), "usage")
	srv.Close()
	require.Error(t, run([]string{srv.URL + "/readyz"}), "nothing listening")
}
