// Package envconfig reads a Kiln process's configuration from its
// environment: one struct whose fields carry caarlos0/env tags (`env`,
// `envDefault`), then its Validate. Every role, the standalone and each
// `kiln serve` role read theirs this way; the store settings they embed
// live beside it, in package connect.
package envconfig

import (
	"fmt"

	"github.com/caarlos0/env/v11"
)

// Load reads a C from environ (variable → value), applies the tags'
// defaults and validates it; an error names the configuration (e.g.
// "gateway config: …").
func Load[C any, P interface {
	*C
	Validate() error
}](environ map[string]string, name string) (C, error) {
	c, err := env.ParseAsWithOptions[C](env.Options{Environment: environ})
	if err != nil {
		return c, fmt.Errorf("%s config: %w", name, err)
	}
	if err := P(&c).Validate(); err != nil {
		return c, fmt.Errorf("%s config: %w", name, err)
	}
	return c, nil
}
