package eventpost

import (
	"bytes"
	"fmt"
	"strconv"
)

// BatchCounts are the totals at the head of a batch answer:
// {"accepted":N,"duplicates":N,"rejected":N,"failed":N,"results":[...]}.
type BatchCounts struct {
	Accepted   int
	Duplicates int
	Rejected   int
	Failed     int
}

// ParseBatchCounts reads the four totals of a batch answer without decoding
// its per-item results, which keeps the load generator's CPU for load.
// Ingest writes the totals before "results"; only that prefix is scanned, so
// a key inside an item cannot be mistaken for a total.
func ParseBatchCounts(body []byte) (BatchCounts, error) {
	head := body
	if i := bytes.Index(body, []byte(`"results"`)); i >= 0 {
		head = body[:i]
	}
	var c BatchCounts
	fields := []struct {
		key string
		dst *int
	}{
		{`"accepted":`, &c.Accepted},
		{`"duplicates":`, &c.Duplicates},
		{`"rejected":`, &c.Rejected},
		{`"failed":`, &c.Failed},
	}
	for _, f := range fields {
		v, err := intAfter(head, f.key)
		if err != nil {
			return BatchCounts{}, fmt.Errorf("batch answer %.80q: %w", body, err)
		}
		*f.dst = v
	}
	return c, nil
}

// intAfter returns the non-negative integer that follows key in b.
func intAfter(b []byte, key string) (int, error) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, fmt.Errorf("no %s", key)
	}
	rest := bytes.TrimLeft(b[i+len(key):], " ")
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	v, err := strconv.Atoi(string(rest[:n]))
	if err != nil {
		return 0, fmt.Errorf("%s is not a count", key)
	}
	return v, nil
}
