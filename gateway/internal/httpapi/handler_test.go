package httpapi

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// TestListEventsOverBudgetIsAClearProblem: a query MongoDB does not answer
// within the budget is a 503 naming the cause, with Retry-After, not a
// hang or a 500.
func TestListEventsOverBudgetIsAClearProblem(t *testing.T) {
	t.Parallel()
	db := testsupport.StartMongo(t).Database(t)
	h := &Handler{History: readmodel.NewHistory(db, readmodel.DefaultCollections), HistoryBudget: time.Nanosecond,
		Now: time.Now, Log: testsupport.Logger(t)}
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 1 << 16, Log: testsupport.Logger(t)})
	app.Get("/events", h.ListEvents)
	resp, err := app.Test(httptest.NewRequest("GET", "/events?userId=u1", nil), 30_000)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 503, resp.StatusCode, "%s", body)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	var p struct{ Type, Detail string }
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, "https://kiln.dev/problems/query-over-budget", p.Type)
	require.Contains(t, p.Detail, "recent-events cache")
}
