// Package readmodel is the storage side of Kiln's projections: the MongoDB
// event history and per-minute rollups, the Redis metric counters, and the
// checkpoints. The projector writes through it and the gateway reads through
// it, so the document and key layouts live in one place.
//
// Every write is idempotent: history documents are keyed by event id,
// rollups count only events whose history insert was new, and Redis
// counters are guarded per stream sequence by a bitmap.
package readmodel
