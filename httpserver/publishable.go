package httpserver

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/kilnhq/kiln/schemas"
)

// PublishableKey is a key a browser may hold: it writes only events of
// its types, and only from pages of its origins.
type PublishableKey struct {
	// Types are event-type patterns (page.*, ui.click); an event of
	// another type is refused.
	Types []string
	// Origins are the pages that may use it, in KILN_ALLOWED_ORIGINS'
	// syntax: exact origins (https://shop.example.com), wildcard
	// subdomains (https://*.example.com) or "*" (any page).
	Origins Origins
}

// AllowsType reports whether the key may write events of type typ.
func (k *PublishableKey) AllowsType(typ string) bool {
	return slices.ContainsFunc(k.Types, func(p string) bool { return schemas.MatchType(p, typ) })
}

// AllowsOrigin reports whether a request from origin (its Origin header)
// may use the key. A request without Origin is refused: browsers send it
// on every POST (fetch, sendBeacon, forms), and server-side code has an
// ingest key.
func (k *PublishableKey) AllowsOrigin(origin string) bool {
	return origin != "" && k.Origins.Allows(origin)
}

// Publishable is the set of publishable keys (KILN_PUBLISHABLE_KEYS).
type Publishable struct {
	keys map[[32]byte]*PublishableKey
}

// Enabled reports whether any publishable key is configured.
func (p Publishable) Enabled() bool { return len(p.keys) > 0 }

// Find returns the publishable key key, if it is one.
func (p Publishable) Find(key string) (*PublishableKey, bool) {
	k, ok := p.keys[sha256.Sum256([]byte(key))]
	return k, ok
}

// ParsePublishable reads KILN_PUBLISHABLE_KEYS: entries separated by ';',
// each a key followed by types=<patterns> and origins=<origins>, the lists
// comma-separated:
//
//	pk_shop_1 types=page.*,ui.click origins=https://shop.example.com,https://*.shop.example.com
//
// Both lists are required ("origins=*" allows every page). Errors name the
// entry by position and never print a key.
func ParsePublishable(setting string) (Publishable, error) {
	p := Publishable{keys: map[[32]byte]*PublishableKey{}}
	for i, entry := range strings.Split(setting, ";") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("KILN_PUBLISHABLE_KEYS entry %d: %s (syntax: <key> types=<pattern>,… origins=<origin>,…; entries separated by ';')",
				i+1, fmt.Sprintf(format, args...))
		}
		key, k := fields[0], &PublishableKey{}
		if strings.Contains(key, "=") {
			return Publishable{}, bad("starts with %q, not a key", key[:strings.Index(key, "=")+1])
		}
		if len(key) < 16 {
			return Publishable{}, bad("the key is %d characters; use at least 16 random ones", len(key))
		}
		for _, f := range fields[1:] {
			name, list, ok := strings.Cut(f, "=")
			var vals []string
			for v := range strings.SplitSeq(list, ",") {
				if v = strings.TrimSpace(v); v != "" {
					vals = append(vals, v)
				}
			}
			switch {
			case !ok || (name != "types" && name != "origins"):
				return Publishable{}, bad("%q is not types=… or origins=…", f)
			case len(vals) == 0:
				return Publishable{}, bad("%s= is empty", name)
			case name == "types":
				for _, t := range vals {
					if err := schemas.CheckPattern(t); err != nil {
						return Publishable{}, bad("types: %v", err)
					}
				}
				k.Types = append(k.Types, vals...)
			default:
				o, err := ParseOrigins(list)
				if err != nil {
					return Publishable{}, bad("origins: %s", strings.TrimPrefix(err.Error(), OriginsVar+": "))
				}
				k.Origins = o
			}
		}
		switch {
		case len(k.Types) == 0:
			return Publishable{}, bad("types= is required (the event types the key may write)")
		case k.Origins.String() == "":
			return Publishable{}, bad("origins= is required (the pages that may use the key; * for any)")
		}
		digest := sha256.Sum256([]byte(key))
		if _, dup := p.keys[digest]; dup {
			return Publishable{}, bad("the key is listed twice")
		}
		p.keys[digest] = k
	}
	return p, nil
}
