package delivery

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestJobMessage(t *testing.T) {
	job := Job{WebhookID: WebhookID("ev-1", "ep-1"), EndpointID: "ep-1", EventID: "ev-1", EventType: "order.created",
		Seq: 42, Body: []byte(`{"type":"order.created","data":{"a":"<&>"}}`)}
	redriven := job
	redriven.Redrive = 3
	tests := []struct {
		name    string
		header  nats.Header
		data    []byte
		want    Job
		wantErr string
	}{
		{name: "fields in headers, body as data", header: job.msg().Header, data: job.msg().Data, want: job},
		{name: "redriven", header: redriven.msg().Header, data: redriven.msg().Data, want: redriven},
		{
			name: "queued as JSON by an earlier version", header: nats.Header{"Nats-Msg-Id": {job.WebhookID}},
			data: []byte(`{"webhookId":"` + job.WebhookID + `","endpointId":"ep-1","eventId":"ev-1","eventType":"order.created","seq":42,` +
				`"body":{"type":"order.created","data":{"a":"<&>"}}}`),
			want: job,
		},
		{name: "neither", header: nats.Header{}, data: []byte(`{"type":"x"}`), wantErr: "no webhook id"},
		{name: "not JSON", header: nats.Header{}, data: []byte(`{`), wantErr: "decode job"},
		{name: "bad seq", header: nats.Header{headerWebhookID: {"w"}, headerEndpointID: {"e"}, headerSeq: {"x"}}, wantErr: headerSeq},
		{name: "no endpoint", header: nats.Header{headerWebhookID: {"w"}, headerSeq: {"1"}}, wantErr: headerEndpointID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeJob(tt.header, tt.data)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want.WebhookID, got.WebhookID)
			require.Equal(t, tt.want.EndpointID, got.EndpointID)
			require.Equal(t, tt.want.EventID, got.EventID)
			require.Equal(t, tt.want.EventType, got.EventType)
			require.Equal(t, tt.want.Seq, got.Seq)
			require.Equal(t, tt.want.Redrive, got.Redrive)
			require.JSONEq(t, string(tt.want.Body), string(got.Body))
		})
	}
	require.Equal(t, job.WebhookID, job.msg().Header.Get("Nats-Msg-Id"))
	require.Equal(t, job.WebhookID+".redrive.3", redriven.msg().Header.Get("Nats-Msg-Id"))
	require.Equal(t, Subject("ep-1"), job.msg().Subject)
}
