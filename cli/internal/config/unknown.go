package config

import (
	"slices"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Unknown is a variable that looks like a Kiln setting but is none.
type Unknown struct {
	Name string
	// Suggestion is the nearest known name, "" when none is near.
	Suggestion string
}

// sharedPrefixes are prefixes of Kiln's settings that other software uses
// too, so a variable with one that Kiln does not know is no sign of a
// mistake: OTEL_ (the OpenTelemetry SDK reads its own), GRPC_ (grpc-go's
// GRPC_GO_LOG_*, GRPC_TRACE), NATS_, MONGO_, REDIS_ (container images and
// Kubernetes service links), and words any program may use. A variable
// with one of them is reported only when it is one edit from a Kiln name
// (MONGO_URL for MONGO_URI).
func sharedPrefixes() []string {
	return []string{"OTEL", "GRPC", "NATS", "MONGO", "REDIS", "LOG", "ADMIN", "SMTP", "SLACK", "STREAM", "WS"}
}

// Prefixes are the prefixes Kiln owns: the first word of its settings'
// names, but for the shared ones. A variable with one of them that no
// role reads is reported.
func (r *Registry) Prefixes() []string {
	var out []string
	for _, s := range r.settings {
		word, _, ok := strings.Cut(s.Name, "_")
		if !ok || slices.Contains(sharedPrefixes(), word) || slices.Contains(out, word+"_") {
			continue
		}
		out = append(out, word+"_")
	}
	sort.Strings(out)
	return out
}

// Unknown are the variables of environ that look like Kiln settings and
// are none, by name: every one with a prefix Kiln owns, and any one edit
// from a Kiln name. Kubernetes' service-link variables (KILN_INGEST_PORT
// beside KILN_INGEST_SERVICE_HOST) are not reported.
func (r *Registry) Unknown(environ map[string]string) []Unknown {
	prefixes := r.Prefixes()
	var out []Unknown
	for name := range environ {
		if _, known := r.index[name]; known || serviceLink(name, environ) {
			continue
		}
		upper := strings.ToUpper(name)
		owned := slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(upper, p) })
		nearest, d := r.nearest(upper)
		switch {
		case owned:
			if d > max(2, len(name)/3) {
				nearest = ""
			}
		case d <= 1 && len(name) >= 6:
		default:
			continue
		}
		out = append(out, Unknown{Name: name, Suggestion: nearest})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// nearest is the known name closest to name and its edit distance; of
// two as close, a role's setting before a tool's.
func (r *Registry) nearest(name string) (string, int) {
	best, bestD, bestTool := "", -1, true
	for _, s := range r.settings {
		d, tool := levenshtein.ComputeDistance(name, s.Name), s.toolOnly()
		if bestD < 0 || d < bestD || d == bestD && bestTool && !tool {
			best, bestD, bestTool = s.Name, d, tool
		}
	}
	return best, bestD
}

// serviceLink reports whether name is one of the variables Kubernetes
// sets for a Service X in the namespace (X_SERVICE_HOST, X_SERVICE_PORT*,
// X_PORT, X_PORT_*): the manifests' Services are named kiln-ingest, ….
func serviceLink(name string, environ map[string]string) bool {
	if strings.HasSuffix(name, "_SERVICE_HOST") {
		return true
	}
	if i := strings.Index(name, "_SERVICE_PORT"); i > 0 {
		_, ok := environ[name[:i]+"_SERVICE_HOST"]
		return ok
	}
	if i := strings.LastIndex(name, "_PORT"); i > 0 {
		svc := name[:i]
		for {
			if _, ok := environ[svc+"_SERVICE_HOST"]; ok {
				return true
			}
			j := strings.LastIndex(svc, "_PORT")
			if j <= 0 {
				return false
			}
			svc = svc[:j]
		}
	}
	return false
}
