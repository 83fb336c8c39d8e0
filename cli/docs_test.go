package cli_test

// The documentation's checks live beside the CLI because half of them are
// about it: every `kiln …` command the README and docs/ show must exist in
// the command tree (with its flags), every `make X` in the Makefile, and
// every relative link must resolve — the file exists and a #anchor names
// one of its headings, by GitHub's slug rules.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/cli/internal/command"
)

// docFiles are the documents checked: the README, docs/ and the packages'
// READMEs, relative to the repository root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"README.md", "docs/*.md", "*/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	return files
}

func TestDocsLinksResolve(t *testing.T) {
	root := filepath.Join("..")
	var problems []string
	for _, f := range docFiles(t, root) {
		problems = append(problems, checkLinks(t, root, f)...)
	}
	require.Empty(t, problems, "broken links in the documentation")
}

func TestDocsCommandsExist(t *testing.T) {
	root := filepath.Join("..")
	tree := command.NewRoot(command.IO{Env: map[string]string{}})
	targets := makeTargets(t, filepath.Join(root, "Makefile"))
	var problems []string
	var kilns, makes int
	for _, f := range docFiles(t, root) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, f)
		for _, c := range shownCommands(string(b)) {
			switch c.tool {
			case "kiln":
				kilns++
				if err := kilnCommandExists(tree, c.words); err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d: %s: %v", rel, c.line, c.text, err))
				}
			case "make":
				makes++
				for _, w := range c.words {
					if !strings.Contains(w, "=") && !strings.HasPrefix(w, "-") && !targets[w] {
						problems = append(problems, fmt.Sprintf("%s:%d: %s: the Makefile has no target %q", rel, c.line, c.text, w))
					}
				}
			}
		}
	}
	t.Logf("%d kiln and %d make commands checked", kilns, makes)
	require.Empty(t, problems, "commands shown in the documentation that do not exist")
	require.Greater(t, kilns, 20, "the kiln commands of the docs were found")
	require.Greater(t, makes, 5, "the make commands of the docs were found")
}

// TestDocsChecksCatchMistakes runs the checks on documents with one
// mistake of each kind, so a check that silently passes everything fails.
func TestDocsChecksCatchMistakes(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "docs"), 0o755))
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("docs/api.md", "# Kiln API\n\n## `POST /events`\n\n## Live stream — `GET /stream` (SSE)\n\n```sh\n# not a heading\n```\n")
	tree := command.NewRoot(command.IO{Env: map[string]string{}})

	for _, tc := range []struct {
		name, text string
		problems   int
	}{
		{"links that resolve", "[a](docs/api.md) [b](docs/api.md#post-events) [c](docs/api.md#live-stream--get-stream-sse) [d](#top) [e](https://example.com/x)\n# Top\n", 0},
		{"a missing file", "see [the API](docs/apis.md)\n", 1},
		{"a missing anchor", "see [the API](docs/api.md#post-event)\n", 1},
		{"a heading inside a code block is no anchor", "[x](docs/api.md#not-a-heading)\n", 1},
		{"a missing anchor in the same file", "# Title\n\n[x](#titel)\n", 1},
		{"links inside code are not links", "`[x](nowhere.md)`\n\n```\n[y](nowhere.md)\n```\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write("README.md", tc.text)
			require.Len(t, checkLinks(t, dir, filepath.Join(dir, "README.md")), tc.problems)
		})
	}

	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"a command with its argument and flag", "```sh\nkiln replay all --dry-run\n```", true},
		{"after a variable, flags with values", "```sh\nKILN_TOKEN_SECRETS=$S kiln tokens mint --type 'order.*' --user u1 --ttl 15m\n```", true},
		{"go run, an optional flag, a comment", "```sh\ngo run ./cli/cmd/kiln dlq list [--json]   # a comment\n```", true},
		{"a placeholder in inline code", "`kiln serve <role>`", true},
		{"a misspelt command", "```sh\nkiln replays all\n```", false},
		{"a misspelt subcommand", "```sh\nkiln dlq lists\n```", false},
		{"a misspelt flag", "```sh\nkiln replay all --dry-runn\n```", false},
		{"a misspelt subcommand in inline code", "`kiln rules chek`", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := shownCommands(tc.text)
			require.Len(t, cmds, 1)
			err := kilnCommandExists(tree, cmds[0].words)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

var (
	// linkRE is an inline link or image: [text](target "title").
	linkRE = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	codeRE = regexp.MustCompile("`[^`]*`")
	fence  = regexp.MustCompile("^\\s*(```|~~~)")
)

// proseLines are the document's lines with fenced code blocks blanked.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	in := false
	for i, l := range lines {
		if fence.MatchString(l) {
			in = !in
			lines[i] = ""
			continue
		}
		if in {
			lines[i] = ""
		}
	}
	return lines
}

// checkLinks reports the relative links of file (under root) that do not
// resolve.
func checkLinks(t *testing.T, root, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	rel, _ := filepath.Rel(root, file)
	var problems []string
	for i, line := range proseLines(string(b)) {
		// Blank inline code (same length), so a link's text may hold code
		// but code never holds a link.
		masked := codeRE.ReplaceAllStringFunc(line, func(s string) string {
			return "`" + strings.Repeat("x", len(s)-2) + "`"
		})
		for _, m := range linkRE.FindAllStringSubmatchIndex(masked, -1) {
			target := line[m[2]:m[3]]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				if _, err := os.Stat(dest); err != nil {
					problems = append(problems, fmt.Sprintf("%s:%d: %s: no such file", rel, i+1, target))
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if filepath.Ext(dest) != ".md" {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: an anchor into a file that is not Markdown", rel, i+1, target))
				continue
			}
			d, err := os.ReadFile(dest)
			require.NoError(t, err)
			if slugs := headingSlugs(string(d)); !slugs[anchor] {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: no heading with that anchor", rel, i+1, target))
			}
		}
	}
	return problems
}

var (
	headingRE  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	mdLinkRE   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	emphasisRE = regexp.MustCompile("[`*]")
)

// headingSlugs are the anchors GitHub gives the document's headings:
// the rendered text, lower-cased, with everything but letters, digits,
// connectors ('_'), spaces and '-' dropped, spaces turned into '-', and
// -1, -2, … added to repeats.
func headingSlugs(text string) map[string]bool {
	slugs := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(text) {
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		h := mdLinkRE.ReplaceAllString(m[1], "$1")
		h = emphasisRE.ReplaceAllString(h, "")
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r) || unicode.Is(unicode.Pc, r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			slugs[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			slugs[slug] = true
		}
		seen[slug]++
	}
	return slugs
}

// shown is a command a document shows: kiln or make, and its words.
type shown struct {
	tool  string
	words []string
	line  int
	text  string
}

var envAssign = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// shownCommands finds the kiln and make commands of the text: in shell
// code blocks (continuation lines joined, comments dropped, pipelines and
// lists split) and in inline code spans of the prose.
func shownCommands(text string) []shown {
	var out []shown
	add := func(cmd string, line int) {
		for _, part := range regexp.MustCompile(`\|\||&&|[|;]`).Split(cmd, -1) {
			words := shellWords(part)
			for len(words) > 0 && envAssign.MatchString(words[0]) {
				words = words[1:]
			}
			switch {
			case len(words) >= 1 && (words[0] == "kiln" || words[0] == "bin/kiln" || words[0] == "./bin/kiln"):
				out = append(out, shown{tool: "kiln", words: words[1:], line: line, text: strings.TrimSpace(part)})
			case len(words) >= 3 && words[0] == "go" && words[1] == "run" && strings.TrimSuffix(words[2], "/") == "./cli/cmd/kiln":
				out = append(out, shown{tool: "kiln", words: words[3:], line: line, text: strings.TrimSpace(part)})
			case len(words) >= 2 && words[0] == "make":
				out = append(out, shown{tool: "make", words: words[1:], line: line, text: strings.TrimSpace(part)})
			}
		}
	}
	lines := strings.Split(text, "\n")
	in, shell := false, false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := fence.FindStringSubmatch(l); m != nil {
			if !in {
				lang := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), "`~"))
				shell = lang == "sh" || lang == "bash" || lang == "shell" || lang == "console"
			}
			in = !in
			continue
		}
		if in {
			if !shell {
				continue
			}
			start := i
			for strings.HasSuffix(strings.TrimSpace(lines[i]), `\`) && i+1 < len(lines) {
				l = strings.TrimSuffix(strings.TrimSpace(l), `\`) + " " + lines[i+1]
				i++
			}
			add(stripComment(l), start+1)
			continue
		}
		for _, code := range codeRE.FindAllString(l, -1) {
			add(strings.Trim(code, "`"), i+1)
		}
	}
	return out
}

// stripComment drops a shell comment: a '#' at the start of a word and
// outside quotes.
func stripComment(l string) string {
	var quote rune
	prev := ' '
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && unicode.IsSpace(prev):
			return l[:i]
		}
		prev = r
	}
	return l
}

// shellWords splits a command into words, removing quotes.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// kilnCommandExists walks the command tree along words: each word names a
// subcommand while the command has subcommands; the flags shown must be
// the command's. A placeholder (<role>, ep_…) ends the check.
func kilnCommandExists(root *cobra.Command, words []string) error {
	cmd := root
	args, value := false, false
	for _, w := range words {
		w = strings.Trim(w, "[]")
		if value { // the value of the flag before
			value = false
			continue
		}
		if w == "" || w == "…" || strings.HasPrefix(w, "<") || strings.Contains(w, "…") {
			if strings.HasPrefix(w, "-") {
				continue
			}
			args = true
			continue
		}
		if strings.HasPrefix(w, "-") {
			f, err := lookupFlag(cmd, w)
			if err != nil {
				return err
			}
			value = f != nil && f.Value.Type() != "bool" && !strings.Contains(w, "=")
			continue
		}
		if args {
			continue
		}
		if sub := subcommand(cmd, w); sub != nil {
			cmd = sub
			continue
		}
		if hasSubcommands(cmd) {
			return fmt.Errorf("%q has no subcommand %q", cmd.CommandPath(), w)
		}
		args = true // the command's arguments
	}
	return nil
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || slices.Contains(sub.Aliases, name) {
			return sub
		}
	}
	return nil
}

func hasSubcommands(cmd *cobra.Command) bool {
	for _, sub := range cmd.Commands() {
		if sub.Name() != "help" && sub.Name() != "completion" {
			return true
		}
	}
	return false
}

// lookupFlag finds the flag w (--name, --name=value or -n) of cmd; nil
// for cobra's own --help and --version.
func lookupFlag(cmd *cobra.Command, w string) (*pflag.Flag, error) {
	name, _, _ := strings.Cut(w, "=")
	switch {
	case name == "--help" || name == "-h":
		return nil, nil
	case name == "--version" && cmd.Root() == cmd:
		return nil, nil
	}
	if long, ok := strings.CutPrefix(name, "--"); ok {
		if f := cmd.Flags().Lookup(long); f != nil {
			return f, nil
		}
		if f := cmd.InheritedFlags().Lookup(long); f != nil {
			return f, nil
		}
	} else if short := strings.TrimPrefix(name, "-"); len(short) == 1 {
		if f := cmd.Flags().ShorthandLookup(short); f != nil {
			return f, nil
		}
		if f := cmd.InheritedFlags().ShorthandLookup(short); f != nil {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%q has no flag %s", cmd.CommandPath(), name)
}

// makeTargets are the Makefile's rule names.
func makeTargets(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	targets := map[string]bool{}
	rule := regexp.MustCompile(`^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:([^=]|$)`)
	for line := range strings.SplitSeq(string(b), "\n") {
		if m := rule.FindStringSubmatch(line); m != nil {
			for _, name := range strings.Fields(m[1]) {
				targets[name] = true
			}
		}
	}
	require.True(t, targets["run"] && targets["test"], "the Makefile's run and test targets were found")
	return targets
}
