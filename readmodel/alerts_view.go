package readmodel

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// AlertCursor is a keyset position in the alerts' newest-first order
// (decidedAt, id).
type AlertCursor struct {
	DecidedAt int64
	ID        string
}

// String encodes the cursor for a URL.
func (c AlertCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.DecidedAt, 10) + "." + c.ID))
}

// ParseAlertCursor decodes a cursor produced by AlertCursor.String; anything
// else is ErrBadCursor.
func ParseAlertCursor(s string) (AlertCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return AlertCursor{}, ErrBadCursor
	}
	at, id, ok := strings.Cut(string(b), ".")
	if !ok || id == "" {
		return AlertCursor{}, ErrBadCursor
	}
	c := AlertCursor{ID: id}
	if c.DecidedAt, err = strconv.ParseInt(at, 10, 64); err != nil || c.DecidedAt < 0 {
		return AlertCursor{}, ErrBadCursor
	}
	return c, nil
}

// AlertView is an alert as clients see it: an item of GET /alerts and the
// data of the live stream's "event: alert" frame. Times are Unix ms.
type AlertView struct {
	ID        string `json:"id"`
	Rule      string `json:"rule"`
	Kind      string `json:"kind"`
	Message   string `json:"message"`
	Status    string `json:"status"` // the worst of the channels': dead, retrying, pending, sent
	DedupeKey string `json:"dedupeKey"`
	// The event that decided the alert (for a threshold, the one that
	// crossed it) and its stream sequence.
	EventID        string `json:"eventId"`
	EventType      string `json:"eventType"`
	Seq            int64  `json:"seq"`
	EventTimestamp int64  `json:"eventTimestamp"`
	UserID         string `json:"userId,omitempty"`
	// Threshold alerts: the group, the window [windowStart, windowEnd) and
	// the matching events counted in it.
	Group       string `json:"group,omitempty"`
	WindowStart int64  `json:"windowStart,omitempty"`
	WindowEnd   int64  `json:"windowEnd,omitempty"`
	Count       int    `json:"count,omitempty"`
	// CreatedAt is when the alert was decided.
	CreatedAt int64         `json:"createdAt"`
	Channels  []ChannelView `json:"channels"`
}

// ChannelView is an alert's delivery on one channel.
type ChannelView struct {
	Name      string `json:"name"`
	Status    string `json:"status"` // pending, retrying, sent, dead
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError,omitempty"`
	SentAt    int64  `json:"sentAt,omitempty"`
	NextAt    int64  `json:"nextAt,omitempty"` // the next attempt, while retrying
	Redrives  int    `json:"redrives,omitempty"`
}

// View returns the alert as clients see it. Channels without a delivery
// read (a freshly decided alert) are pending.
func (a Alert) View() AlertView {
	v := AlertView{
		ID: a.ID, Rule: a.Rule, Kind: a.Kind, Message: a.Message, Status: a.Status, DedupeKey: a.DedupeKey,
		EventID: a.EventID, EventType: a.EventType, Seq: a.EventSeq, EventTimestamp: a.EventTimestamp, UserID: a.UserID,
		Group: a.Group, WindowStart: a.WindowStart, WindowEnd: a.WindowEnd, Count: a.Count, CreatedAt: a.DecidedAt,
		Channels: make([]ChannelView, 0, len(a.Channels)),
	}
	byChannel := make(map[string]Delivery, len(a.Deliveries))
	for _, d := range a.Deliveries {
		byChannel[d.Channel] = d
	}
	for _, ch := range a.Channels {
		d, ok := byChannel[ch]
		if !ok {
			d.Status = DeliveryPending
		}
		v.Channels = append(v.Channels, ChannelView{
			Name: ch, Status: d.Status, Attempts: d.Attempts, LastError: d.LastError, SentAt: d.SentAt,
			NextAt: d.NextAt, Redrives: d.Redrives,
		})
	}
	if v.Status == "" {
		v.Status = DeliveryPending
		if len(a.Deliveries) > 0 {
			v.Status = OverallStatus(a.Deliveries)
		}
	}
	return v
}
