// Package idledger is the layout of Kiln's id ledger, the KV bucket that
// remembers the first stream sequence of every client-supplied event id
// beyond the EVENTS stream's dedupe window. Ingest writes it
// (ingest/internal/publish); `kiln restore` and `kiln mirror promote`
// settle it against a restored or promoted stream (cli/internal/ledgersettle).
// Both read and write entries only through this package.
package idledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

const (
	// Bucket is the ledger's KV bucket.
	Bucket = "EVENT_IDS"
	// Stream is the bucket's stream.
	Stream = "KV_" + Bucket
	// SubjectPrefix prefixes every key's subject in Stream.
	SubjectPrefix = "$KV." + Bucket + "."
)

// pendingPrefix starts a reservation's value.
const pendingPrefix = 'p'

// Key is id's key: the hex SHA-256 of the id (any id is a valid key so).
func Key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// SeqValue is the value recording an id's stream sequence.
func SeqValue(seq uint64) []byte { return strconv.AppendUint(nil, seq, 10) }

// PendingValue is the value of a reservation made at at, before the id's
// event is appended: "p<unix ms>".
func PendingValue(at time.Time) []byte {
	return strconv.AppendInt([]byte{pendingPrefix}, at.UnixMilli(), 10)
}

// Value is a decoded entry: a sequence, or a reservation pending since a
// time (Seq 0).
type Value struct {
	Seq     uint64
	Pending time.Time
}

// Parse decodes an entry's value.
func Parse(v []byte) (Value, error) {
	if len(v) > 0 && v[0] == pendingPrefix {
		ms, err := strconv.ParseInt(string(v[1:]), 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%q is not a reservation", v)
		}
		return Value{Pending: time.UnixMilli(ms)}, nil
	}
	seq, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return Value{}, fmt.Errorf("%q is not a sequence", v)
	}
	return Value{Seq: seq}, nil
}
