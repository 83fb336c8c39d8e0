package live

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
)

// Summary is the content of the compat snapshot frame: what the pre-Kiln
// stream sent every 3 s and the old dashboard's live panel renders.
type Summary struct {
	// Total is the number of stored events.
	Total int64
	// Recent is the newest stored events, newest first, as a JSON array
	// (the items of GET /events).
	Recent json.RawMessage
}

// same reports whether s and o say the same.
func (s Summary) same(o Summary) bool {
	return s.Total == o.Total && bytes.Equal(s.Recent, o.Recent)
}

// summaryFrame encodes the compat snapshot frame
// {"timestamp":<ISO date>,"total":N,"recent":[…]}: unnamed, so browsers hand
// it to EventSource.onmessage as the old stream's frames were, and without
// id, so it does not move the client's Last-Event-ID. Kiln's event frames
// always have an id, an "event: message" line and a seq in their data.
func summaryFrame(at time.Time, s Summary) ([]byte, error) {
	recent := s.Recent
	if len(recent) == 0 {
		recent = json.RawMessage(`[]`)
	}
	data, err := json.Marshal(struct {
		Timestamp string          `json:"timestamp"`
		Total     int64           `json:"total"`
		Recent    json.RawMessage `json:"recent"`
	}{at.UTC().Format("2006-01-02T15:04:05.000Z"), s.Total, recent}) // compacts recent onto the one data line
	if err != nil {
		return nil, err
	}
	wire := make([]byte, 0, len(data)+8)
	wire = append(wire, "data: "...)
	wire = append(wire, data...)
	return append(wire, "\n\n"...), nil
}

// publishSummary computes the summary once for every client and, when it
// differs from the last one sent, hands the new snapshot frame to the
// clients that get them (see Filter.everything). It runs every
// MetricsInterval, only while there are clients.
func (h *Hub) publishSummary(ctx context.Context) {
	if h.clientCount() == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, max(h.opts.MetricsInterval, time.Second))
	defer cancel()
	sum, err := h.opts.Summary(sctx)
	if err != nil {
		if ctx.Err() == nil && !h.summaryFailing {
			h.opts.Log.Warn("live stream: snapshot frame failed; retrying every interval", "err", err)
		}
		h.summaryFailing = true
		return
	}
	if h.summaryFailing {
		h.opts.Log.Info("live stream: snapshot frames work again")
		h.summaryFailing = false
	}
	if h.lastSummary != nil && h.lastSummary.same(sum) {
		return
	}
	wire, err := summaryFrame(time.Now(), sum)
	if err != nil {
		h.opts.Log.Error("live stream: encode snapshot frame", "err", err)
		return
	}
	h.lastSummary = &sum
	h.summaries.fire(wire)
}
