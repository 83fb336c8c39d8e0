package config

import "strings"

// about is what the registry adds to a setting the code declares: its
// description and how to show it. The defaults are not here: they are the
// roles' `envDefault` tags.
type about struct {
	desc string
	// note qualifies the default (see Setting.Note).
	note string
	// secret values are never printed; names ending in KEY(S), SECRET(S),
	// PASSWORD or TOKEN are secrets without saying so.
	secret bool
	// ignoredBy are roles whose configuration carries the setting (a
	// shared struct) without using it: `kiln run` sets its own listeners
	// and stores.
	ignoredBy []string
}

// secretName reports whether a name says its setting holds credentials.
func secretName(name string) bool {
	for _, suffix := range []string{"_KEY", "_KEYS", "_SECRET", "_SECRETS", "_PASSWORD", "_TOKEN"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// descriptions are the settings' descriptions, by name: the one place
// they are written (docs/configuration.md is generated from them). A
// setting added to a role's configuration struct needs a line here
// (TestEverySettingIsDescribed).
func descriptions() map[string]about {
	return map[string]about{
		"PORT":                          {desc: "the one public HTTP port"},
		"ADMIN_PORT":                    {desc: "admin listener: `/metrics` (Prometheus), `/healthz`, `/readyz`"},
		"ADMIN_HOST":                    {desc: "interface the admin listener binds: loopback by default, as it has no auth (`0.0.0.0` in the container image, where the published port is the way in)"},
		"KILN_DATA_DIR":                 {desc: "NATS (`nats/`) and FerretDB (`ferretdb/`) data"},
		"NATS_PORT":                     {desc: "embedded NATS client port (127.0.0.1)"},
		"MONGO_URI":                     {note: "embedded FerretDB", desc: "MongoDB holding the read models and alerts (a replica set in production); `kiln run` runs an embedded FerretDB when it is unset"},
		"MONGO_PORT":                    {desc: "embedded FerretDB port (127.0.0.1)"},
		"REDIS_URL":                     {note: "a `redis-server` child", desc: "Redis holding the counters and the recent-events cache: one server `redis://[user:pass@]host:6379/0`, Sentinel `redis-sentinel://[user:pass@]s1:26379,s2:26379/<master>[/db]`, Cluster `redis-cluster://[user:pass@]n1:7000,n2:7001` (see operations.md, Redis: one server, Sentinel, Cluster); Kiln keeps only rebuildable state in it. Unset, `kiln run` starts a `redis-server` found on `PATH` (working directory `KILN_DATA_DIR/redis`, made absolute; no persistence; if it fails, its reason is logged), else runs the in-process miniredis with a warning of its cost; the log (`redis: …`, at Info: `redis-server <version>`, pid, URL) and `KILN_DATA_DIR/kiln-standalone.json` (`redis`, `store`) say which"},
		"REDIS_PORT":                    {note: "any", desc: "port of the started `redis-server` or in-process Redis"},
		"LOG_LEVEL":                     {desc: "`debug`, `info`, `warn`, `error` (`kiln run` and every `kiln serve <role>`)"},
		"LOG_FORMAT":                    {note: "`text` for `kiln run`, `json` for `kiln serve`", desc: "`text` or `json`; JSON records carry `service` (the role) and `version`"},
		"ADMIN_PPROF":                   {desc: "`true` serves Go's profiles (`net/http/pprof`) under `/debug/pprof/` on the admin listener (e.g. `go tool pprof http://127.0.0.1:9100/debug/pprof/profile?seconds=30`); off they are 404"},
		"OTEL_EXPORTER_OTLP_ENDPOINT":   {note: "tracing off", desc: "OTLP collector URL (`http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for HTTP); unset: no exporter, a no-op tracer"},
		"OTEL_EXPORTER_OTLP_PROTOCOL":   {desc: "`grpc` or `http/protobuf`"},
		"OTEL_SERVICE_NAME":             {note: "the role: `kiln-ingest`, …; `kiln` for `kiln run`", desc: "the `service.name` of the spans"},
		"OTEL_TRACES_SAMPLER_ARG":       {desc: "share of new traces sampled (0–1); a sampled parent's children always are"},
		"NATS_URL":                      {ignoredBy: []string{Standalone}, desc: "NATS with the `EVENTS` stream; a comma-separated list of a cluster's nodes (the client moves to another when one goes away)"},
		"INGEST_ADDR":                   {ignoredBy: []string{Standalone}, desc: "public listener of `kiln serve ingest`"},
		"INGEST_ADMIN_ADDR":             {ignoredBy: []string{Standalone}, desc: "admin listener of `kiln serve ingest`"},
		"INGEST_MAX_BODY_BYTES":         {desc: "larger bodies, on the wire or decoded from `Content-Encoding`, get 413 (see [security.md](security.md#limits-and-hardening))"},
		"INGEST_MAX_BATCH":              {desc: "more events per request get 413"},
		"INGEST_PUBLISH_TIMEOUT":        {desc: "longest wait for JetStream acks before 503"},
		"INGEST_RATE_LIMIT":             {note: "off", desc: "requests per second per configured ingest key (else client IP) before 429"},
		"INGEST_IDEMPOTENCY_TTL":        {desc: "how long client ids are remembered beyond the stream's window"},
		"INGEST_MAX_FUTURE_SKEW":        {desc: "how far ahead of the server clock an event `timestamp` may be (400 beyond); counters and alert windows bound their retention for anything accepted"},
		"KILN_INGEST_KEYS":              {note: "auth off", desc: "comma-separated API keys allowed to ingest"},
		"KILN_PUBLISHABLE_KEYS":         {secret: true, desc: "keys a browser may hold: `;`-separated entries `<key> types=<pattern>,… origins=<origin>,…` (origins as in `KILN_ALLOWED_ORIGINS`, `*` for any); each writes only its types, from its origins (a request without `Origin` is refused); keys of at least 16 characters"},
		"STREAM_REPLICAS":               {desc: "replicas of `EVENTS` and the `EVENT_IDS` ledger (ingest), `ALERTS` and `ALERTS_DLQ` (notifier), `WEBHOOKS` (outbound webhooks): 3 in a cluster"},
		"STREAM_DUPLICATE_WINDOW":       {desc: "JetStream dedupe window"},
		"STREAM_MAX_AGE":                {note: "forever", desc: "drop events older than this"},
		"STREAM_MAX_BYTES":              {note: "unlimited", desc: "cap the stream's size"},
		"MONGO_DATABASE":                {desc: "database of the read models"},
		"PROJECTOR_ADMIN_ADDR":          {ignoredBy: []string{Standalone}, desc: "admin listener of `kiln serve projector`"},
		"PROJECTOR_BATCH_SIZE":          {desc: "most events applied per write"},
		"PROJECTOR_ACK_WAIT":            {desc: "redelivery after an unacked batch"},
		"PROJECTOR_MAX_DELIVER":         {desc: "JetStream's delivery limit for the projection consumers; `-1` is none (a bounded limit lets the server drop a message that waited behind slow batches too many AckWaits, and move the ack floor past it)"},
		"PROJECTOR_POISON_AFTER":        {desc: "deliveries after which an event failing alone is recorded and skipped"},
		"PROJECTOR_MINUTE_RETENTION":    {desc: "how long per-minute Redis counters live"},
		"PROJECTOR_RECENT_MAX_EVENTS":   {desc: "events the recent-events cache in Redis keeps (the newest by `timestamp`, then `seq`; about 0.7 KB of Redis memory each); `kiln replay --recent-max-events` must match"},
		"PROJECTOR_CHECK_INTERVAL":      {desc: "checkpoint, lag and lost-Redis check period (also how soon a Redis failover is verified against the stream)"},
		"REDIS_WAIT_REPLICAS":           {desc: "Redis replicas that must confirm each batch's counters and cache writes (`WAIT`) before it is acked; 0 is none (a failover's lost writes are then found and restored from the stream; see operations.md, Redis failover); above 0, a master with fewer replicas stalls the projection (readiness says so)"},
		"REDIS_WAIT_TIMEOUT":            {desc: "how long a batch waits for `REDIS_WAIT_REPLICAS`; fewer confirmations fail the batch, which is retried"},
		"GATEWAY_ADDR":                  {ignoredBy: []string{Standalone}, desc: "public listener of `kiln serve gateway`"},
		"GATEWAY_ADMIN_ADDR":            {ignoredBy: []string{Standalone}, desc: "admin listener of `kiln serve gateway`"},
		"KILN_READ_KEYS":                {note: "auth off", desc: "comma-separated API keys allowed to read"},
		"KILN_ALLOWED_ORIGINS":          {desc: "origins browser pages may call Kiln from ([Browsers](security.md#browsers)): `*`, exact origins, `https://*.example.com`; CORS on the public routes (not the webhooks admin API unless listed explicitly) and Socket.IO's origin check (403 for others)"},
		"KILN_TOKEN_SECRETS":            {note: "no tokens", desc: "comma-separated HS256 secrets (at least 32 bytes each) of subscriber tokens; the first signs (`kiln tokens mint`), all verify (rotation: add the new one first, drop the old one after its tokens expired); setting it turns read auth on"},
		"KILN_TOKEN_AUDIENCE":           {desc: "when set, a token's `aud` must hold it (`kiln tokens mint` sets it)"},
		"KILN_TOKEN_ISSUER":             {desc: "when set, a token's `iss` must be it (`kiln tokens mint` sets it)"},
		"GATEWAY_SSE_BUFFER":            {desc: "frames a stream client may have pending before it is disconnected"},
		"GATEWAY_SSE_METRICS_INTERVAL":  {desc: "period of `event: metrics` frames and of the check for a new compat snapshot frame"},
		"GATEWAY_SSE_HEARTBEAT":         {desc: "period of `: ping` comments"},
		"GATEWAY_SSE_WRITE_TIMEOUT":     {desc: "a stream client that accepts nothing for this long is cut off"},
		"GRPC_ADDR":                     {desc: "gRPC listener (`orders.OrderService`, `kiln.v1.EventService`, health, reflection); HTTP/2 cleartext"},
		"GRPC_MAX_MESSAGE_BYTES":        {desc: "largest gRPC message received or sent (`RESOURCE_EXHAUSTED` beyond)"},
		"GRPC_UNARY_TIMEOUT":            {desc: "deadline of a unary gRPC call whose client set none (a shorter client deadline wins)"},
		"GRPC_STREAM_BUFFER":            {desc: "events a `Subscribe` or `ChatOrders` stream may have pending"},
		"GRPC_SLOW_TIMEOUT":             {desc: "a `Subscribe` stream whose buffer stays full this long is cut (`RESOURCE_EXHAUSTED`, resume seq in the `kiln-resume-seq` trailer)"},
		"GRPC_MAX_CATCHUPS":             {desc: "`Subscribe` streams replaying stored events (resuming behind the live stream) at once; the others wait their turn"},
		"GRPC_MAX_CONCURRENT_STREAMS":   {desc: "calls open at once on one gRPC connection (HTTP/2 `MAX_CONCURRENT_STREAMS`; a client waits for one to end); also enables grpc-go's rapid-reset protection"},
		"GRPC_MAX_CONNECTIONS":          {desc: "gRPC connections open at once; the listener accepts no more until one closes"},
		"GRPC_MAX_SUBSCRIBES":           {desc: "`Subscribe` streams open at once in the process; one more is answered `RESOURCE_EXHAUSTED` naming this setting (each idle one holds about 70 KB of RSS with the default `GRPC_STREAM_BUFFER`)"},
		"GRPC_MAX_CONNECTION_IDLE":      {desc: "a gRPC connection with no call for this long is closed"},
		"GRPC_KEEPALIVE_MIN_TIME":       {desc: "shortest interval between client keepalive pings; a client pinging more often is disconnected"},
		"ORDERS_DEFAULT_CURRENCY":       {desc: "currency of orders created over gRPC (the old message has none; `order.created` requires one)"},
		"ORDERS_CATCH_UP_WAIT":          {desc: "longest wait of `GetOrders` for the orders projection to reach the events stored before the call (read-your-writes); `0s` answers at once"},
		"WS_TOKEN":                      {desc: "Socket.IO token (compat): reads; writes only while write auth is off; a read key or subscriber token works too; with none set the namespaces are open to read"},
		"SOCKETIO_BUFFER":               {desc: "stream events the Socket.IO server may have pending before it is cut from the feed and rejoins (logged)"},
		"SOCKETIO_WRITE_TIMEOUT":        {desc: "a Socket.IO WebSocket client that accepts no data for this long is disconnected (bounds what queues behind it)"},
		"SOCKETIO_CLIENT_BUFFER":        {desc: "frames a Socket.IO WebSocket client may have queued; past it the client is cut (close 1013 \"slow consumer\") and reconnects"},
		"SOCKETIO_FLUSH_INTERVAL":       {desc: "how long the Socket.IO fan-out gathers feed events before handing them to every client at once; `0s` sends each as it comes"},
		"SOCKETIO_CLIENT_BUFFER_BYTES":  {desc: "bytes of frames a Socket.IO WebSocket client may have queued; past it the client is cut as past `SOCKETIO_CLIENT_BUFFER`"},
		"SOCKETIO_MAX_CONNECTIONS":      {desc: "Engine.IO clients connected at once; one more handshake is answered 503"},
		"SOCKETIO_MAX_PACKET_BYTES":     {desc: "largest packet received (Engine.IO `maxHttpBufferSize`): a longer WebSocket message closes the connection with 1009 \"message too big\", a longer polling POST gets 413"},
		"SOCKETIO_MAX_MESSAGE_BYTES":    {desc: "longest `/chat` author and text, or `order:update` orderId and status, decoded (UTF-8 bytes); a longer one is refused with an error naming this setting"},
		"SOCKETIO_CHAT_QUEUE_BYTES":     {desc: "bytes of `/chat` messages waiting to be stored; past it a message is refused with \"server busy\""},
		"SOCKETIO_CHAT_BATCH_BYTES":     {desc: "largest body of one append of queued `/chat` messages (a batch always holds at least one message)"},
		"SOCKETIO_ORDER_UPDATE_RATE":    {desc: "`order:update` rebroadcasts one socket may send per second (bursts of as many); past it one is refused"},
		"SOCKETIO_HANDSHAKE_RATE":       {desc: "new Engine.IO sessions the server opens per second (bursts of as many); one more handshake is answered 429 naming it"},
		"NOTIFIER_ADMIN_ADDR":           {ignoredBy: []string{Standalone}, desc: "admin listener: `/metrics`, `/healthz`, `/readyz`"},
		"NOTIFIER_RULES_FILE":           {note: "built-in example rules", desc: "YAML or JSON alert rules file ([notifier/README.md](../notifier/README.md))"},
		"NOTIFIER_MAX_ATTEMPTS":         {desc: "sends per delivery before it goes to `ALERTS_DLQ` (with the default backoff the attempts span about 8.5 min, so a channel outage of a few minutes delivers late rather than dead-letters)"},
		"NOTIFIER_BACKOFF_BASE":         {desc: "delay after the first failed send, doubling"},
		"NOTIFIER_BACKOFF_MAX":          {desc: "longest delay between sends"},
		"NOTIFIER_ACK_WAIT":             {desc: "redelivery of an event or job whose worker died; must exceed the send timeout"},
		"NOTIFIER_SEND_TIMEOUT":         {desc: "bound on one Slack request or SMTP session"},
		"NOTIFIER_DELIVERY_CONCURRENCY": {desc: "deliveries in flight per channel"},
		"NOTIFIER_LEASE_TTL":            {desc: "how long the active notifier's lease lasts unrenewed: with two or more notifiers, a standby takes over this long after the active one died (at once when it stopped gracefully); the same on every notifier"},
		"SCHEMAS_COMPATIBILITY":         {desc: "compatibility mode a new schema version of an event type must keep, for a type with none of its own: `BACKWARD`, `FORWARD`, `FULL` or `NONE`"},
		"SCHEMAS_ENFORCEMENT":           {desc: "what ingest does with an event its type's schema refuses, for a type with no enforcement of its own: `reject`, `quarantine` or `none`"},
		"SCHEMAS_UNKNOWN_TYPES":         {desc: "what ingest does with an event of a type that has no schema of its own: `accept` it after the envelope's checks, or `reject` it (400 naming `eventType`, recorded in `REJECTIONS`)"},
		"REJECTIONS_MAX_AGE":            {desc: "how long the `REJECTIONS` stream keeps a refused or quarantined event (its body as sent, reasons, key fingerprint); older ones are dropped, and can no longer be recovered"},
		"REJECTIONS_MAX_BYTES":          {desc: "size cap of the `REJECTIONS` stream; past it the oldest records are dropped first"},
		"SCHEMAS_CHECK_SAMPLE":          {desc: "how many of a type's most recent stored events a new schema version is checked against"},
		"SLACK_WEBHOOK_URL":             {note: "Slack off", secret: true, desc: "Slack incoming webhook URL"},
		"SMTP_HOST":                     {note: "email off", desc: "SMTP server"},
		"SMTP_PORT":                     {desc: "its port (465 with `SMTP_TLS=tls`, 1025 for Mailpit)"},
		"SMTP_TLS":                      {desc: "`starttls-required`, `starttls-opportunistic`, `tls`, `none`"},
		"SMTP_USERNAME":                 {note: "no auth", desc: "SMTP user"},
		"SMTP_PASSWORD":                 {desc: "SMTP password"},
		"SMTP_AUTH":                     {note: "`autodiscover` with a username", desc: "SASL mechanism"},
		"SMTP_FROM":                     {note: "required with `SMTP_HOST`", desc: "sender address"},
		"SMTP_TO":                       {note: "required with `SMTP_HOST`", desc: "comma-separated recipients"},
		"WEBHOOKS_PROVIDERS_FILE":       {note: "no providers", desc: "YAML or JSON file of inbound webhook providers: secrets, schemes, payload mapping ([Webhooks](api.md#webhooks-in-and-out))"},
		"WEBHOOK_SECRET":                {note: "off", desc: "compat: a provider the file does not list verifies with the old `X-Signature` scheme and this secret"},
		"WEBHOOK_TOLERANCE":             {desc: "how far an inbound webhook's timestamp may be from now, both ways (401 beyond)"},
		"KILN_ADMIN_KEYS":               {note: "auth off", desc: "comma-separated API keys for the admin API (`/webhook-endpoints`, `/webhook-deliveries`); required when any of `KILN_INGEST_KEYS`, `KILN_READ_KEYS`, `KILN_PUBLISHABLE_KEYS`, `KILN_TOKEN_SECRETS` is set (start refused without)"},
		"WEBHOOKS_ATTEMPT_TIMEOUT":      {desc: "bound on one outbound delivery request"},
		"WEBHOOKS_RETRY_SCHEDULE":       {desc: "delay after each failed attempt; then the delivery is dead"},
		"WEBHOOKS_DISABLE_AFTER":        {desc: "an endpoint failing continuously this long is disabled with the reason"},
		"WEBHOOKS_MAX_RETRY_AFTER":      {desc: "cap on the wait a 429/503 `Retry-After` asks for (a longer one waits this long)"},
		"WEBHOOKS_LOG_RETENTION":        {desc: "the delivery log deletes a succeeded or dead delivery this long after its last change (dead ones can no longer be redriven then); retrying ones stay"},
		"WEBHOOKS_ROTATION_OVERLAP":     {desc: "how long a rotated-out endpoint secret keeps signing"},
		"WEBHOOKS_CONCURRENCY":          {desc: "outbound requests in flight in all"},
		"WEBHOOKS_ENDPOINT_CONCURRENCY": {desc: "outbound requests in flight to one endpoint (a slow one holds no more workers)"},
		"WEBHOOKS_ALLOW_NETWORKS":       {note: "none", desc: "CIDRs the SSRF guard lets deliveries reach although loopback/private/link-local (e.g. `127.0.0.0/8` for a local demo receiver)"},
		"WEBHOOKS_ENDPOINT_REFRESH":     {desc: "how often the dispatcher reloads endpoints changed elsewhere"},
		"WEBHOOKS_ADDR":                 {ignoredBy: []string{Standalone}, desc: "public listener of `kiln serve webhooks`: the admin API (`/webhook-endpoints`, `/webhook-deliveries`)"},
		"WEBHOOKS_ADMIN_ADDR":           {ignoredBy: []string{Standalone}, desc: "admin listener of `kiln serve webhooks`"},
		"REALTIME_ADDR":                 {desc: "public listener of `kiln serve realtime`: Socket.IO (`/socket.io/`, namespaces `/chat`, `/notifications`); gRPC is on `GRPC_ADDR`"},
		"REALTIME_ADMIN_ADDR":           {desc: "admin listener of `kiln serve realtime`"},
		"KILN_SERVICES":                 {desc: "which services the standalone runs"},
		// The tools' variables (tools.go).
		"KILN_URL":                   {desc: "Kiln's HTTP base URL for `kiln webhooks`"},
		"KILN_ADMIN_KEY":             {desc: "an admin key (one of `KILN_ADMIN_KEYS`) that `kiln webhooks` and `kiln-webhooks` send"},
		"KILN_API_KEY":               {desc: "the API key `kiln-load` and `kiln-burst` send (one of `KILN_INGEST_KEYS`)"},
		"KILN_INGEST_KEY":            {desc: "the ingest key `kiln-webhooks` sends (one of `KILN_INGEST_KEYS`)"},
		"KILN_VERSION":               {desc: "the image tag `docker compose` runs and builds"},
		"KILN_IMAGE_PREFIX":          {desc: "the registry and owner of the image `docker compose` runs"},
		"NATS_CONFIG":                {note: "one server", desc: "the NATS configuration `docker compose` runs (`cluster/nats-1.conf` with the cluster profile)"},
		"KILN_FAULTS":                {desc: "`1` runs the whole fault suite (`make test-faults`)"},
		"KILN_FAULT_OUTAGE":          {note: "3 s; 60 s in `make test-faults`", desc: "how long a fault test keeps a dependency away"},
		"KILN_SOAK_DURATION":         {note: "soak off", desc: "how long `make soak` runs the standalone under load"},
		"KILN_SSE_LOAD":              {note: "off", desc: "`1` runs the live stream's load measurement (`TestStreamLoad`)"},
		"KILN_REPLAY_EVENTS":         {desc: "events the replay test stores (`50000`: the full-size check)"},
		"KILN_LOAD_DURATION":         {desc: "how long each scenario of the load tool's integration test runs"},
		"KILN_LOAD_SCENARIOS":        {note: "all", desc: "comma-separated scenarios the load tool's integration test runs"},
		"KILN_TEST_WEBHOOK_BACKLOG":  {desc: "jobs waiting in the webhooks backlog test"},
		"KILN_TEST_REDIS_PARENT_DIR": {desc: "set by the embedded redis-server test for its child process"},
		"KILN_HOSTILE_SCALE":         {desc: "how many hostile streams each case of the gRPC hostile-client test opens"},
		"KILN_SCREENSHOT":            {note: "none", desc: "where the dashboard's browser test writes its screenshots"},
		"KILN_CLUSTER":               {note: "off", desc: "`1` runs the cluster faults: a 3-node NATS cluster, Redis Cluster or Sentinel and two processes of every role (`make test-cluster`)"},
		"KILN_SCALE":                 {note: "off", desc: "`1` runs the scaling measurement: one then two `kiln serve` processes of ingest, projector and gateway, each one's share of the work and CPU per 1,000 events (`faults/scale_test.go`, docs/scaling.md)"},
		"KILN_UPGRADE":               {note: "off", desc: "`1` runs the upgrade test, the previous release replaced by this build under traffic (`make test-upgrade`)"},
	}
}
