package live

// recent is the hub's memory of the last events it fanned out: a resuming
// client whose position is among them catches up from it, with no
// JetStream request of its own. At start the hub reads the last Buffer
// stored events into it, so a gateway restart with thousands of resuming
// clients costs a few JetStream requests, not a consumer per client.
//
// It holds at most len(ring) frames and covers every stored event in
// (from, the hub's lastSeq]: messages that are not events take no slot.
// Guarded by hub.mu.
type recent struct {
	ring []*Frame
	head int // index of the oldest frame
	n    int
	from uint64
}

func newRecent(size int) *recent {
	return &recent{ring: make([]*Frame, max(size, 1))}
}

// reset empties r; it covers what follows seq.
func (r *recent) reset(seq uint64) {
	clear(r.ring)
	r.head, r.n, r.from = 0, 0, seq
}

// add appends the next frame fanned out, forgetting the oldest when full.
func (r *recent) add(f *Frame) {
	if r.n == len(r.ring) {
		r.from = r.ring[r.head].Seq
		r.ring[r.head] = nil
		r.head = (r.head + 1) % len(r.ring)
		r.n--
	}
	r.ring[(r.head+r.n)%len(r.ring)] = f
	r.n++
}

// covers reports whether every event after cursor up to the hub's lastSeq
// is in r.
func (r *recent) covers(cursor uint64) bool { return cursor >= r.from }

// after appends to dst the frames with cursor < Seq <= upto; false when r
// does not cover cursor.
func (r *recent) after(cursor, upto uint64, dst []*Frame) ([]*Frame, bool) {
	if !r.covers(cursor) {
		return dst, false
	}
	// Frames are in sequence order: skip the ones at or before cursor.
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if r.ring[(r.head+mid)%len(r.ring)].Seq <= cursor {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < r.n; i++ {
		f := r.ring[(r.head+i)%len(r.ring)]
		if f.Seq > upto {
			break
		}
		dst = append(dst, f)
	}
	return dst, true
}
