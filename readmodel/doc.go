// Package readmodel is the storage side of Kiln's projections: the MongoDB
// event history, the Redis metric counters, and the checkpoints. The
// projector writes through it and the gateway reads through it, so the
// document and key layouts live in one place.
//
// Every write is idempotent: history documents are keyed by event id (an
// insert of an id already present is a no-op), and Redis counters are
// guarded per stream sequence by a bitmap. Every MongoDB call has a deadline
// (CallTimeout).
package readmodel
