package live

import "strings"

// index holds the sessions subscribed to the fan-out so that an event
// visits only the sessions that may want it: a session whose filter is one
// exact event type (the common narrow client) is filed under that type;
// every other session is visited for every event. With thousands of narrow
// clients an event costs a map lookup, not a filter check per client.
type index struct {
	byType map[string]map[*session]struct{}
	rest   map[*session]struct{}
	n      int
}

func newIndex() index {
	return index{byType: map[string]map[*session]struct{}{}, rest: map[*session]struct{}{}}
}

// exactType is the one literal type the filter selects, if it is that.
func (f Filter) exactType() (string, bool) {
	if len(f.Types) != 1 || strings.ContainsAny(f.Types[0], "*>") {
		return "", false
	}
	return f.Types[0], true
}

func (x *index) add(s *session) {
	if x.has(s) {
		return
	}
	x.n++
	if typ, ok := s.req.Filter.exactType(); ok {
		set := x.byType[typ]
		if set == nil {
			set = map[*session]struct{}{}
			x.byType[typ] = set
		}
		set[s] = struct{}{}
		return
	}
	x.rest[s] = struct{}{}
}

func (x *index) has(s *session) bool {
	if typ, ok := s.req.Filter.exactType(); ok {
		_, in := x.byType[typ][s]
		return in
	}
	_, in := x.rest[s]
	return in
}

func (x *index) remove(s *session) {
	if !x.has(s) {
		return
	}
	x.n--
	if typ, ok := s.req.Filter.exactType(); ok {
		set := x.byType[typ]
		delete(set, s)
		if len(set) == 0 {
			delete(x.byType, typ)
		}
		return
	}
	delete(x.rest, s)
}

// each calls fn for every session f may go to (fn still checks the
// filter): for an event, those filed under its type and the rest; for an
// alert, all.
func (x *index) each(f *Frame, fn func(*session)) {
	if f.alert {
		for _, set := range x.byType {
			for s := range set {
				fn(s)
			}
		}
	} else {
		for s := range x.byType[f.Type] {
			fn(s)
		}
	}
	for s := range x.rest {
		fn(s)
	}
}
