// Package connect opens Kiln's connections to its stores — NATS, MongoDB
// and Redis — the one way every role, the standalone and the kiln CLI do:
// the same client options, the same names in the servers' client lists,
// and errors that name the store without leaking the URL's credentials.
//
// A process that serves keeps its connections through outages (NATS
// reconnects forever; MongoDB and Redis clients reconnect on use) and
// reports a store it cannot reach on /readyz rather than refusing to
// start. A CLI command connects once and fails fast.
package connect
