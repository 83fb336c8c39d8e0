package serve_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/testsupport"
)

// TestEveryRoleReadsAdminPprof: every kiln serve role reads the one
// ADMIN_PPROF (serve.Role.Run) and refuses a value that is not a bool
// before it connects anywhere.
func TestEveryRoleReadsAdminPprof(t *testing.T) {
	t.Parallel()
	for _, r := range serve.Roles() {
		t.Run(r.Name, func(t *testing.T) {
			t.Parallel()
			err := r.Run(context.Background(), map[string]string{"ADMIN_PPROF": "maybe"}, testsupport.Logger(t))
			require.ErrorContains(t, err, r.Name+" config: ADMIN_PPROF")
			require.ErrorContains(t, err, `"maybe"`)
		})
	}
}
