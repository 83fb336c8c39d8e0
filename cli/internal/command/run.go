package command

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/app/serve"
	"github.com/kilnhq/kiln/app/standalone"
)

// runCommand is the standalone: every service in one process.
func runCommand(io IO) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run all of Kiln in one process: embedded NATS and FerretDB, Redis, every service on one port",
		Long: `Run all of Kiln in one process (what "make run" starts): embedded NATS
JetStream and FerretDB with their data under KILN_DATA_DIR (./data), Redis from
REDIS_URL or else a redis-server from PATH or an in-process one, every HTTP
service on PORT (8080), gRPC on GRPC_ADDR (:9090), the admin listener on
ADMIN_PORT (127.0.0.1:9100). KILN_SERVICES picks a subset of the services.
Operations commands run from the same folder find its stores by themselves.`,
		Example: `  kiln run
  PORT=9000 KILN_DATA_DIR=/tmp/kiln kiln run
  LOG_FORMAT=json LOG_LEVEL=debug kiln run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logging, err := serve.LoadLogging(io.Env)
			if err != nil {
				return err
			}
			log := logging.Logger(io.Err, "text", "version", io.Version)
			warnUnknown(io.Env, log)
			cfg, err := standalone.LoadConfig(io.Env)
			if err != nil {
				return err
			}
			return standalone.Run(cmd.Context(), cfg, log)
		},
	}
}

// serveCommand runs one role per process, one subcommand per role.
func serveCommand(io IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve <role>",
		Short: "Run one role of a split deployment: " + strings.Join(serve.RoleNames(), ", "),
		Long: `Run one role of a split deployment (what the container image, compose and the
Kubernetes manifests run), configured from the environment, with its admin
listener (/metrics, /healthz, /readyz; /debug/pprof/ with ADMIN_PPROF=true).
SIGINT or SIGTERM shuts it down gracefully.`,
		Example: `  NATS_URL=nats://nats:4222 kiln serve ingest
  MONGO_URI=mongodb://mongo:27017 REDIS_URL=redis://redis:6379/0 kiln serve projector`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("name a role: %s", strings.Join(serve.RoleNames(), ", "))
		},
	}
	for _, role := range serve.Roles() {
		cmd.AddCommand(&cobra.Command{
			Use:     role.Name,
			Short:   role.Short,
			Long:    role.Short + ".\nListens on: " + role.Listens + ".",
			Example: "  kiln serve " + role.Name + "\n  LOG_LEVEL=debug ADMIN_PPROF=true kiln serve " + role.Name,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				logging, err := serve.LoadLogging(io.Env)
				if err != nil {
					return err
				}
				log := logging.Logger(io.Err, "json", "service", role.Name, "version", io.Version)
				warnUnknown(io.Env, log)
				return role.Run(cmd.Context(), io.Env, log)
			},
		})
	}
	return cmd
}
