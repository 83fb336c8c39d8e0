package webhooks

import (
	"fmt"
	"log/slog"
	"strings"
)

// OtherKeys are the deployment's other credentials, read from the same
// variables as the roles that use them. The admin API lets whoever holds
// an admin key add an endpoint and so receive every event: once any of
// these is set (the deployment guards its events), KILN_ADMIN_KEYS must be
// too. With none at all (make run on a laptop) the admin API stays open,
// and says so at start.
type OtherKeys struct {
	Ingest       string `env:"KILN_INGEST_KEYS"`
	Read         string `env:"KILN_READ_KEYS"`
	Publishable  string `env:"KILN_PUBLISHABLE_KEYS"`
	TokenSecrets string `env:"KILN_TOKEN_SECRETS"`
}

// set names the variables that hold a key.
func (o OtherKeys) set() []string {
	var names []string
	for _, v := range []struct{ name, value string }{
		{"KILN_INGEST_KEYS", o.Ingest}, {"KILN_READ_KEYS", o.Read},
		{"KILN_PUBLISHABLE_KEYS", o.Publishable}, {"KILN_TOKEN_SECRETS", o.TokenSecrets},
	} {
		if strings.Trim(v.value, " ,;") != "" {
			names = append(names, v.name)
		}
	}
	return names
}

// adminKeys reports whether an admin key is configured.
func (c *Config) adminKeys() bool {
	for _, k := range c.AdminKeys {
		if strings.TrimSpace(k) != "" {
			return true
		}
	}
	return false
}

// checkAdminKeys refuses a deployment that guards its events with keys but
// leaves the admin API open.
func (c *Config) checkAdminKeys() error {
	if others := c.OtherKeys.set(); len(others) > 0 && !c.adminKeys() {
		return fmt.Errorf("KILN_ADMIN_KEYS must be set when %s is: without it the webhooks admin API "+
			"(/webhook-endpoints) is open on the public port and anyone could add an endpoint and receive every event",
			strings.Join(others, ", "))
	}
	return nil
}

// warnIfOpen says at start that the admin API needs no key.
func warnIfOpen(cfg Config, log *slog.Logger) {
	if !cfg.adminKeys() {
		log.Warn("webhooks admin API is open: no KILN_ADMIN_KEYS and no other keys set, so anyone who reaches the public port " +
			"can add an endpoint and receive every event; fine on a laptop, set KILN_ADMIN_KEYS anywhere else")
	}
}
