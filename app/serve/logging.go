package serve

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kilnhq/kiln/connect/envconfig"
)

// Logging is the log settings of every command that runs Kiln (`kiln
// run`, `kiln serve <role>`).
type Logging struct {
	Level string `env:"LOG_LEVEL" envDefault:"info"`
	// Format is text or json; empty: text for `kiln run` (a terminal),
	// json for `kiln serve` (containers, log collectors).
	Format string `env:"LOG_FORMAT"`
}

// Validate reports the first invalid setting, naming its env var.
func (l *Logging) Validate() error {
	if _, err := l.level(); err != nil {
		return err
	}
	if l.Format != "" && l.Format != "text" && l.Format != "json" {
		return fmt.Errorf("LOG_FORMAT must be text or json, got %q", l.Format)
	}
	return nil
}

func (l *Logging) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(l.Level))); err != nil {
		return lv, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", l.Level)
	}
	return lv, nil
}

// LoadLogging reads the log settings from environ.
func LoadLogging(environ map[string]string) (Logging, error) {
	return envconfig.Load[Logging](environ, "log")
}

// Logger is the process logger writing to w, in Format or else
// defaultFormat, with attrs (service, version) on every record.
func (l *Logging) Logger(w io.Writer, defaultFormat string, attrs ...any) *slog.Logger {
	level, _ := l.level() // validated
	opts := &slog.HandlerOptions{Level: level}
	format := l.Format
	if format == "" {
		format = defaultFormat
	}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With(attrs...)
}
