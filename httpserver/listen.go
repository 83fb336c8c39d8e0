package httpserver

import (
	"errors"
	"fmt"
)

// The listener settings every Kiln process reads under one name, whichever
// role it runs: one struct each, embedded where the listener is configured
// (as connect's store settings are), so each has one name, one default and
// one description. A role's listen addresses (<ROLE>_ADDR,
// <ROLE>_ADMIN_ADDR) are its own settings, with its own defaults: they
// stay in its configuration, and ValidateAddrs checks them.

// AdminConfig is what every admin listener (/metrics, /healthz, /readyz)
// reads: `kiln run` and every `kiln serve <role>` alike.
type AdminConfig struct {
	// AdminPprof serves net/http/pprof on the admin listener.
	AdminPprof bool `env:"ADMIN_PPROF" envDefault:"false"`
}

// OriginsConfig is the browser origin policy of every public listener.
type OriginsConfig struct {
	// AllowedOrigins are the origins browser pages may call Kiln from:
	// CORS on the public routes and the Socket.IO origin check.
	AllowedOrigins Origins `env:"KILN_ALLOWED_ORIGINS" envDefault:"*"`
}

// ValidateAddrs reports an empty public or admin address of a role whose
// listen addresses are <prefix>_ADDR and <prefix>_ADMIN_ADDR, and the two
// being one.
func ValidateAddrs(prefix, public, admin string) error {
	var errs []error
	if public == "" {
		errs = append(errs, fmt.Errorf("%s_ADDR must not be empty", prefix))
	}
	if admin == "" {
		errs = append(errs, fmt.Errorf("%s_ADMIN_ADDR must not be empty", prefix))
	}
	if public != "" && public == admin {
		errs = append(errs, fmt.Errorf("%s_ADDR and %s_ADMIN_ADDR must differ, both are %q", prefix, prefix, public))
	}
	return errors.Join(errs...)
}
