// Package config is Kiln's one configuration surface: every environment
// variable Kiln reads, with its default in each role, which roles read it,
// whether it is a secret, and what it means. The settings are read by
// reflection from the roles' own configuration structs (their `env` and
// `envDefault` tags, the one place a default is written); this package adds
// only the descriptions (about.go). `kiln config` prints the registry,
// `kiln config check` and every start report the variables with Kiln's
// prefixes that no role reads (unknown.go), and docs/configuration.md is
// generated from it (markdown.go).
package config

import (
	"fmt"
	"slices"
	"sort"

	"github.com/caarlos0/env/v11"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/notifier"
	"github.com/kilnhq/kiln/projector"
)

// Standalone is the role name of `kiln run` (everything in one process).
const Standalone = "standalone"

// Setting is one environment variable Kiln reads.
type Setting struct {
	Name string
	// Description says what it does (markdown).
	Description string
	// Note qualifies the default: what an empty default means ("tracing
	// off") or what a zero one does ("off").
	Note string
	// Defaults is the default in each role that reads the setting ("" when
	// it has none there).
	Defaults map[string]string
	// Secret values are never printed.
	Secret bool
	// readers is the order of Defaults' keys.
	readers []string
}

// Roles are the roles (and tools) that read the setting, in Readers order.
func (s Setting) Roles() []string { return s.readers }

// ReadBy reports whether role reads the setting.
func (s Setting) ReadBy(role string) bool {
	_, ok := s.Defaults[role]
	return ok
}

// toolOnly reports whether only tools read the setting, no role.
func (s Setting) toolOnly() bool {
	return !slices.ContainsFunc(s.readers, func(r string) bool { return !slices.Contains(toolReaders(), r) })
}

// Registry is every setting, sorted by name.
type Registry struct {
	settings []Setting
	index    map[string]int
}

// source is what one role reads its settings from.
type source struct {
	role    string
	configs []any
}

// sources are the structs each role's configuration is parsed into: `kiln
// run` (standalone.Config) and each `kiln serve <role>` with the admin
// listener's settings every role reads (serve.Role.Run), all with the log
// settings. Order: Readers.
func sources() []source {
	out := []source{{Standalone, []any{&standalone.Config{}, &serve.Logging{}}}}
	for _, r := range []source{
		{"ingest", []any{&ingest.Config{}}},
		{"projector", []any{&projector.Config{}}},
		{"notifier", []any{&notifier.Config{}}},
		{"gateway", []any{&gateway.Config{}}},
		{"webhooks", []any{&serve.WebhooksConfig{}}},
		{"realtime", []any{&serve.RealtimeConfig{}}},
	} {
		r.configs = append(r.configs, &httpserver.AdminConfig{}, &serve.Logging{})
		out = append(out, r)
	}
	return out
}

// Readers are the roles `kiln config [role]` accepts: `kiln run`'s, the
// `kiln serve` roles, then the tools that read a few variables of their
// own (the operations commands, compose, the load tools, the tests).
func Readers() []string {
	var out []string
	for _, s := range sources() {
		out = append(out, s.role)
	}
	return append(out, toolReaders()...)
}

// New builds the registry from the roles' configuration structs and the
// tools' variables.
func New() (*Registry, error) {
	r := &Registry{index: map[string]int{}}
	about := descriptions()
	add := func(role, name, def string) {
		i, ok := r.index[name]
		if !ok {
			a := about[name]
			i = len(r.settings)
			r.index[name] = i
			r.settings = append(r.settings, Setting{Name: name, Description: a.desc, Note: a.note,
				Secret: a.secret || secretName(name), Defaults: map[string]string{}})
		}
		s := &r.settings[i]
		if _, seen := s.Defaults[role]; seen || slices.Contains(about[name].ignoredBy, role) {
			// The first field wins: the standalone's own MONGO_URI, not
			// the projector's copy it overrides.
			return
		}
		s.Defaults[role] = def
		s.readers = append(s.readers, role)
	}
	for _, src := range sources() {
		for _, c := range src.configs {
			params, err := env.GetFieldParams(c)
			if err != nil {
				return nil, fmt.Errorf("settings of %s (%T): %w", src.role, c, err)
			}
			for _, p := range params {
				add(src.role, p.Key, p.DefaultValue)
			}
		}
	}
	for _, t := range tools() {
		for _, role := range t.readers {
			add(role, t.name, t.def)
		}
	}
	sort.Slice(r.settings, func(i, j int) bool { return r.settings[i].Name < r.settings[j].Name })
	for i, s := range r.settings {
		r.index[s.Name] = i
	}
	return r, nil
}

// Settings are every setting, by name; with a role, those it reads.
func (r *Registry) Settings(role string) []Setting {
	if role == "" {
		return slices.Clone(r.settings)
	}
	var out []Setting
	for _, s := range r.settings {
		if s.ReadBy(role) {
			out = append(out, s)
		}
	}
	return out
}

// Lookup returns the named setting.
func (r *Registry) Lookup(name string) (Setting, bool) {
	i, ok := r.index[name]
	if !ok {
		return Setting{}, false
	}
	return r.settings[i], true
}
