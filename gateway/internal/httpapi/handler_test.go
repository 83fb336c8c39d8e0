package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// TestListEventsOverBudgetIsAClearProblem: a query MongoDB does not answer
// within the budget is a 503 naming the cause, with Retry-After, not a
// hang or a 500.
func TestListEventsOverBudgetIsAClearProblem(t *testing.T) {
	t.Parallel()
	db := testsupport.StartMongo(t).Database(t)
	history := readmodel.NewHistory(db, readmodel.DefaultCollections())
	// Enough events that the embedded store's full scan takes longer than
	// the budget below; the count connects the client first, so the budget
	// is spent on the query, not on finding the server.
	var evs []schemas.Event
	for i := range 5000 {
		evs = append(evs, schemas.Event{ID: fmt.Sprint("e", i), EventType: "a", UserID: fmt.Sprint("u", i%10),
			Timestamp: 1767225600000 + int64(i), ReceivedAt: 1, Seq: uint64(i + 1)})
	}
	_, err := history.Apply(context.Background(), evs)
	require.NoError(t, err)
	n, err := history.Count(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 5000, n)
	h := &Handler{History: history, HistoryBudget: time.Millisecond, Now: time.Now, Log: testsupport.Logger(t)}
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
