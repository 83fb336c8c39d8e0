package config

import (
	"strings"

	"github.com/kilnhq/kiln/telemetry/redact"
)

// Where a value came from.
const (
	FromEnv     = "env"
	FromDefault = "default"
)

// Redacted stands for a secret's value.
const Redacted = "[redacted]"

// Value is a setting as one role (or, with no role, any) sees it.
type Value struct {
	Setting
	// Value is the variable's value, else the default; redacted.
	Value string
	// Source is FromEnv or FromDefault.
	Source string
	// Default is the role's default; with no role, every role's.
	Default string
}

// Values are the settings role reads (every setting without a role) with
// their values in environ.
func (r *Registry) Values(environ map[string]string, role string) []Value {
	var out []Value
	for _, s := range r.Settings(role) {
		v := Value{Setting: s, Source: FromDefault, Default: s.DefaultText(role)}
		v.Value = v.Default
		if raw, ok := environ[s.Name]; ok {
			v.Value, v.Source = s.Display(raw), FromEnv
		}
		out = append(out, v)
	}
	return out
}

// Display is how a value of s may be printed: a secret's as Redacted, a
// URL's without its password (each of a comma-separated list).
func (s Setting) Display(value string) string {
	switch {
	case value == "":
		return ""
	case s.Secret:
		return Redacted
	case urlName(s.Name):
		parts := strings.Split(value, ",")
		for i, p := range parts {
			parts[i] = redact.URL(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	return value
}

// urlName reports whether a name says its setting is a URL, which may
// carry a password.
func urlName(name string) bool {
	for _, suffix := range []string{"_URL", "_URI", "_ENDPOINT"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// defaultGroup is a default and the readers that have it.
type defaultGroup struct {
	value   string
	readers []string
}

// defaults groups the readers by default, the most common default first.
func (s Setting) defaults() []defaultGroup {
	var groups []defaultGroup
	for _, role := range s.readers {
		def := s.Defaults[role]
		i := 0
		for i < len(groups) && groups[i].value != def {
			i++
		}
		if i == len(groups) {
			groups = append(groups, defaultGroup{value: def})
		}
		groups[i].readers = append(groups[i].readers, role)
	}
	best := 0
	for i, g := range groups {
		if len(g.readers) > len(groups[best].readers) {
			best = i
		}
	}
	groups[0], groups[best] = groups[best], groups[0]
	return groups
}

// DefaultText is the default in role; with no role, each reader's: "x" when
// they agree, else "x; standalone: y" ("-" for none).
func (s Setting) DefaultText(role string) string {
	if role != "" {
		return s.Defaults[role]
	}
	var parts []string
	for i, g := range s.defaults() {
		if i == 0 {
			parts = append(parts, g.value)
			continue
		}
		v := g.value
		if v == "" {
			v = "-"
		}
		parts = append(parts, strings.Join(g.readers, ", ")+": "+v)
	}
	return strings.Join(parts, "; ")
}
