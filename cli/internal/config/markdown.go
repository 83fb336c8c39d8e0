package config

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The markers around the generated part of docs/configuration.md: the text
// outside them is written by hand.
const (
	BeginMarker = "<!-- generated:start -->"
	EndMarker   = "<!-- generated:end -->"
)

// WriteMarkdown writes the settings as the tables of
// docs/configuration.md: those the roles read, then those only the tools
// read.
func (r *Registry) WriteMarkdown(w io.Writer) error {
	var roles, tools []Setting
	for _, s := range r.settings {
		if s.toolOnly() {
			tools = append(tools, s)
		} else {
			roles = append(roles, s)
		}
	}
	var b bytes.Buffer
	b.WriteString("<!-- Generated from the code (`kiln config --markdown`): edit the descriptions in cli/internal/config/about.go and run `go test ./cli/internal/config -run TestConfigurationDoc -update`. -->\n")
	table(&b, roles)
	b.WriteString("\nRead only by the operations commands (`cli`), `docker compose`, the load tools and the tests:\n\n")
	for _, s := range tools {
		fmt.Fprintf(&b, "- `%s` (%s; default %s): %s\n", s.Name, ReadersText(s.readers), defaultCell(s), description(s))
	}
	_, err := w.Write(b.Bytes())
	return err
}

func table(b *bytes.Buffer, settings []Setting) {
	b.WriteString("| variable | default | used by | meaning |\n|---|---|---|---|\n")
	for _, s := range settings {
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", s.Name, defaultCell(s), ReadersText(s.readers), description(s))
	}
}

func description(s Setting) string {
	if s.Secret {
		return s.Description + " (a secret: `kiln config` prints it redacted)"
	}
	return s.Description
}

// defaultCell is the default column: "`x`", "—" for none, readers' other
// defaults after the most common one, and the note after the empty
// default (or the only one).
func defaultCell(s Setting) string {
	groups := s.defaults()
	noted := slices.IndexFunc(groups, func(g defaultGroup) bool { return g.value == "" })
	if noted < 0 && len(groups) == 1 {
		noted = 0
	}
	var parts []string
	for i, g := range groups {
		cell := "—"
		if g.value != "" {
			cell = "`" + g.value + "`"
		}
		if i == noted && s.Note != "" {
			cell += " (" + s.Note + ")"
		}
		if i > 0 {
			cell = strings.Join(g.readers, ", ") + ": " + cell
		}
		parts = append(parts, cell)
	}
	return strings.Join(parts, "; ")
}

// Splice returns doc with the part between the markers replaced by
// generated; an error when a marker is missing.
func Splice(doc, generated []byte) ([]byte, error) {
	begin := bytes.Index(doc, []byte(BeginMarker))
	end := bytes.Index(doc, []byte(EndMarker))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("want the generated part between %q and %q", BeginMarker, EndMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:begin+len(BeginMarker)])
	out.WriteString("\n")
	out.Write(generated)
	out.Write(doc[end:])
	return out.Bytes(), nil
}
