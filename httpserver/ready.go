package httpserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kilnhq/kiln/schemas/problem"
)

// ReadyFunc reports whether a service's dependencies are reachable. Its
// error names each failed dependency first, "<dependency>: <cause>" (one
// per line when joined); only those names reach a client, never the cause,
// which may hold internal addresses.
type ReadyFunc func(ctx context.Context) error

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// Role is one service's readiness inside a process that runs several (the
// standalone).
type Role struct {
	Name  string
	Ready ReadyFunc
}

// RegisterRoleReadiness adds GET /readyz/<role>: 200 when that role's
// dependencies answer, 503 naming the ones that do not. A load balancer
// sending only writes to a standalone probes /readyz/ingest, which stays
// 200 while, say, Redis (the gateway's and projector's) is down.
func RegisterRoleReadiness(r fiber.Router, roles []Role) {
	r.Get("/readyz/:role", func(c *fiber.Ctx) error {
		i := slices.IndexFunc(roles, func(x Role) bool { return x.Name == c.Params("role") })
		if i < 0 {
			names := make([]string, len(roles))
			for k, x := range roles {
				names[k] = x.Name
			}
			return problem.New(http.StatusNotFound, "not-found", "Not found", "no such role; roles: "+strings.Join(names, ", "))
		}
		return answerReady(c, []Role{roles[i]})
	})
}

// RolesReady is the readiness of every role: ready when all are.
func RolesReady(roles []Role) ReadyFunc {
	return func(ctx context.Context) error {
		return checkRoles(ctx, roles).err()
	}
}

// roleStatus is one role's outcome in a readiness answer.
type roleStatus struct {
	Status       string   `json:"status"`
	Dependencies []string `json:"dependencies,omitempty"`
}

type roleResults map[string]roleStatus

// rolesError carries per-role outcomes through a ReadyFunc's error.
type rolesError struct{ roles roleResults }

func (e *rolesError) Error() string {
	var parts []string
	for _, name := range sortedKeys(e.roles) {
		if s := e.roles[name]; s.Status != "ready" {
			parts = append(parts, name+" ("+strings.Join(s.Dependencies, ", ")+")")
		}
	}
	return "not ready: " + strings.Join(parts, ", ")
}

func (r roleResults) err() error {
	for _, s := range r {
		if s.Status != "ready" {
			return &rolesError{r}
		}
	}
	return nil
}

// checkRoles runs the roles' checks at once.
func checkRoles(ctx context.Context, roles []Role) roleResults {
	out := make(roleResults, len(roles))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, role := range roles {
		wg.Go(func() {
			s := roleStatus{Status: "ready"}
			if err := role.Ready(ctx); err != nil {
				s = roleStatus{Status: "unavailable", Dependencies: dependencies(err)}
			}
			mu.Lock()
			defer mu.Unlock()
			out[role.Name] = s
		})
	}
	wg.Wait()
	return out
}

// readyProblem is a 503 problem with the per-role outcomes.
type readyProblem struct {
	*problem.Details
	Roles roleResults `json:"roles,omitempty"`
}

// answerReady checks roles and answers 200 or a 503 problem.
func answerReady(c *fiber.Ctx, roles []Role) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
	defer cancel()
	res := checkRoles(ctx, roles)
	if err := res.err(); err != nil {
		p := problem.Unavailable(err.Error(), 1)
		p.Instance = c.Path()
		c.Set(fiber.HeaderRetryAfter, "1")
		c.Status(p.Status)
		return c.JSON(readyProblem{Details: p, Roles: res}, problem.ContentType)
	}
	return c.JSON(fiber.Map{"status": "ready", "roles": res})
}

// answerReadyFunc answers GET /readyz for one ReadyFunc: per-role detail
// when it is RolesReady, else the dependencies it names.
func answerReadyFunc(c *fiber.Ctx, ready ReadyFunc) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
	defer cancel()
	err := ready(ctx)
	if err == nil {
		return c.JSON(fiber.Map{"status": "ready"})
	}
	var re *rolesError
	if errors.As(err, &re) {
		p := problem.Unavailable(re.Error(), 1)
		p.Instance = c.Path()
		c.Set(fiber.HeaderRetryAfter, "1")
		c.Status(p.Status)
		return c.JSON(readyProblem{Details: p, Roles: re.roles}, problem.ContentType)
	}
	return problem.Unavailable("not ready: "+strings.Join(dependencies(err), ", "), 1)
}

// dependencies are the names err gives its failed dependencies: the text
// before the first ':' of each line, when it looks like a name.
func dependencies(err error) []string {
	var names []string
	for line := range strings.Lines(err.Error()) {
		name, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !dependencyName(name) {
			name = "dependency"
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// dependencyName accepts short names of letters, digits, spaces, '_', '-'
// (no dots or colons: those would be addresses).
func dependencyName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys(m roleResults) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
