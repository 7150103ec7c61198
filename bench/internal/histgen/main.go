// Command histgen supports bench/history.sh: it writes a `git fast-import`
// stream for a long, source-like history with latch tokens planted in it
// (gen), and counts the findings in the reports of latch scan and gitleaks,
// and how many of the planted tokens they hold (count).
//
//	histgen gen [-profile edit|add] -commits N -files N -tokens N -planted FILE [-seed N] | git fast-import
//	histgen count -planted FILE -format latch|gitleaks REPORT
//
// The history is deterministic for given flags. The first commit adds every
// file (Go-like source, and a few YAML configuration files). What the later
// commits do depends on the profile:
//
//   - edit (the default): each commit edits one to four files by replacing,
//     inserting or deleting a few lines, as ordinary development does.
//   - add: each commit adds one new file of -add-min to -add-max bytes
//     (8–16 KB by default; Go source, every eighth a YAML file), as vendored or
//     generated code arrives, and every fourth commit also edits an existing
//     file by a few lines.
//
// Tokens (valid: correct CRC32 checksum, every kind in turn) are added at
// evenly spaced commits, each in a realistic line: in the edit profile into
// an existing file, in the add profile into the file that commit adds. Every
// other one is deleted again some commits later, so that only the history
// still holds it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/latchhq/latch/token"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: histgen gen|count …")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "count":
		err = count(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "histgen:", err)
		os.Exit(2)
	}
}

var (
	words = []string{"user", "repo", "token", "branch", "commit", "ref", "hook", "key", "scope", "project",
		"event", "audit", "cache", "store", "batch", "limit", "count", "name", "path", "blob", "tree",
		"push", "pull", "merge", "review", "config", "node", "lock", "queue", "mail"}
	types   = []string{"int", "string", "bool", "[]byte", "error", "int64", "time.Duration", "*Store", "[]string"}
	authors = [][2]string{{"Ada Lovelace", "ada@example.com"}, {"Alan Turing", "alan@example.com"},
		{"Grace Hopper", "grace@example.com"}, {"Ken Thompson", "ken@example.com"},
		{"Barbara Liskov", "barbara@example.com"}, {"Rob Pike", "rob@example.com"}}
	verbs = []string{"fix", "refactor", "tidy", "speed up", "document", "handle errors in", "test", "rename in"}
)

type gener struct{ r *rand.Rand }

func (g *gener) word() string { return words[g.r.IntN(len(words))] }

func (g *gener) ident() string {
	a, b := g.word(), g.word()
	return a + strings.ToUpper(b[:1]) + b[1:]
}

func (g *gener) exported() string {
	s := g.ident()
	return strings.ToUpper(s[:1]) + s[1:]
}

// stmt returns one line of a Go function body.
func (g *gener) stmt() string {
	switch g.r.IntN(9) {
	case 0:
		return fmt.Sprintf("\t%s := %s(%s, %d)", g.ident(), g.ident(), g.ident(), g.r.IntN(1000))
	case 1:
		return fmt.Sprintf("\tif %s > %d {", g.ident(), g.r.IntN(100))
	case 2:
		return fmt.Sprintf("\t\treturn fmt.Errorf(\"%s %s: %%w\", err)", g.word(), g.word())
	case 3:
		return "\t}"
	case 4:
		return fmt.Sprintf("\t// %s the %s before the %s is %s.", g.word(), g.word(), g.word(), g.word())
	case 5:
		return fmt.Sprintf("\t%s.%s = append(%s.%s, %s)", g.word(), g.exported(), g.word(), g.exported(), g.ident())
	case 6:
		return fmt.Sprintf("\tfor _, %s := range %s {", g.word(), g.ident())
	case 7:
		return fmt.Sprintf("\t%s += len(%s) * %d", g.ident(), g.ident(), g.r.IntN(64))
	default:
		return fmt.Sprintf("\tlog.Printf(\"%s %%s %%d\", %s, %s)", g.word(), g.ident(), g.ident())
	}
}

func (g *gener) goFile(pkg string) []string {
	lines := g.goHeader(pkg)
	for range 4 + g.r.IntN(6) {
		lines = g.goFunc(lines)
	}
	return lines
}

func (g *gener) goHeader(pkg string) []string {
	return []string{"// Package " + pkg + " handles " + g.word() + "s.", "package " + pkg, "",
		"import (", "\t\"fmt\"", "\t\"log\"", "\t\"time\"", ")", ""}
}

// goFunc appends one function to lines.
func (g *gener) goFunc(lines []string) []string {
	name := g.exported()
	lines = append(lines, fmt.Sprintf("// %s returns the %s of a %s.", name, g.word(), g.word()),
		fmt.Sprintf("func %s(%s %s, %s %s) (%s, error) {", name, g.word(), types[g.r.IntN(len(types))],
			g.ident(), types[g.r.IntN(len(types))], types[g.r.IntN(len(types))]))
	for range 6 + g.r.IntN(18) {
		lines = append(lines, g.stmt())
	}
	return append(lines, "\treturn nil, nil", "}", "")
}

// sized returns lines from add until they come to at least size bytes.
func sized(lines []string, size int, add func([]string) []string) []string {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	for n < size {
		k := len(lines)
		lines = add(lines)
		for _, l := range lines[k:] {
			n += len(l) + 1
		}
	}
	return lines
}

func (g *gener) yamlLine() string {
	return fmt.Sprintf("  %s_%s: %d", g.word(), g.word(), g.r.IntN(10000))
}

func (g *gener) yamlFile() []string {
	lines := []string{"# " + g.word() + " settings", g.word() + ":"}
	for range 20 + g.r.IntN(40) {
		lines = append(lines, g.yamlLine())
	}
	return lines
}

// tok returns a valid token of kind k from g's random source.
func (g *gener) tok(k token.Kind) string {
	var b strings.Builder
	b.WriteString(string(k) + "_")
	for range token.RandomLen {
		b.WriteByte(token.Alphabet[g.r.IntN(62)])
	}
	body := b.String()
	return body + token.EncodeChecksum(token.Checksum([]byte(body)))
}

type file struct {
	path  string
	yaml  bool
	lines []string
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	commits := fs.Int("commits", 10000, "number of commits")
	nfiles := fs.Int("files", 300, "number of files")
	ntokens := fs.Int("tokens", 60, "number of planted tokens")
	plantedPath := fs.String("planted", "", "file to write the planted tokens to, one a line")
	seed := fs.Uint64("seed", 1, "random seed")
	profile := fs.String("profile", "edit", "what later commits do: edit (a few lines of existing files) or add (one new file each)")
	addMin := fs.Int("add-min", 8<<10, "smallest file the add profile adds, in bytes")
	addMax := fs.Int("add-max", 16<<10, "largest file the add profile adds, in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *commits < 2 || *nfiles < 1 || *plantedPath == "" {
		return fmt.Errorf("need -commits ≥ 2, -files ≥ 1 and -planted")
	}
	if *profile != "edit" && *profile != "add" {
		return fmt.Errorf("unknown profile %q (edit or add)", *profile)
	}
	if *addMin < 1 || *addMax < *addMin {
		return fmt.Errorf("need 1 ≤ -add-min ≤ -add-max")
	}
	adding := *profile == "add"
	// addsYAML tells whether the add profile's commit c adds a YAML file:
	// every eighth, and those that get a token planted in a YAML line.
	yamlPlant := map[int]bool{}
	addsYAML := func(c int) bool { return c%8 == 0 || yamlPlant[c] }
	g := &gener{r: rand.New(rand.NewPCG(*seed, 7))}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)

	files := make([]*file, *nfiles)
	var configs []int
	for i := range files {
		dir := fmt.Sprintf("%s%d", words[i%len(words)], i/len(words)%4)
		if i%10 == 9 {
			files[i] = &file{path: fmt.Sprintf("config/%s-%d.yaml", words[i%len(words)], i), yaml: true, lines: g.yamlFile()}
			configs = append(configs, i)
			continue
		}
		files[i] = &file{path: fmt.Sprintf("internal/%s/%s_%d.go", dir, g.word(), i), lines: g.goFile(dir)}
	}

	// Plant schedule: token j at commit at[j]; odd ones removed later.
	plantAt := map[int][]*plant{}
	removeAt := map[int][]*plant{}
	protected := map[string]bool{}
	var planted []string
	for j := range *ntokens {
		c := 1 + (j+1)*(*commits-2)/(*ntokens+1)
		p := &plant{tok: g.tok(token.Kinds[j%len(token.Kinds)]), remove: -1}
		if adding {
			// Into the file commit c adds, which is files[nfiles+c-1], with
			// the mix of lines of the edit profile: a third in YAML.
			p.file = *nfiles + c - 1
			if j%3 == 2 {
				yamlPlant[c] = true
			}
			switch {
			case addsYAML(c):
				p.line = fmt.Sprintf("  %s_token: %s", g.word(), p.tok)
			case j%3 == 0:
				p.line = fmt.Sprintf("\tconst %sToken = %q // TODO: read from the environment", g.word(), p.tok)
			default:
				p.line = fmt.Sprintf("\tclient := New(\"https://ci:%s@git.example.com/scm/app.git\")", p.tok)
			}
		} else if len(configs) > 0 && j%3 == 2 {
			p.file = configs[g.r.IntN(len(configs))]
			p.line = fmt.Sprintf("  %s_token: %s", g.word(), p.tok)
		} else {
			p.file = g.r.IntN(*nfiles)
			if files[p.file].yaml {
				p.line = fmt.Sprintf("  deploy_token: %s", p.tok)
			} else {
				switch j % 3 {
				case 0:
					p.line = fmt.Sprintf("\tconst %sToken = %q // TODO: read from the environment", g.word(), p.tok)
				default:
					p.line = fmt.Sprintf("\tclient := New(\"https://ci:%s@git.example.com/scm/app.git\")", p.tok)
				}
			}
		}
		if j%2 == 1 {
			p.remove = min(c+20+g.r.IntN(400), *commits-1)
			removeAt[p.remove] = append(removeAt[p.remove], p)
		}
		plantAt[c] = append(plantAt[c], p)
		protected[p.line] = true
		planted = append(planted, p.tok)
	}
	if err := os.WriteFile(*plantedPath, []byte(strings.Join(planted, "\n")+"\n"), 0o644); err != nil {
		return err
	}

	const t0 = 1_600_000_000
	for c := range *commits {
		var touched []int
		var msg string
		switch {
		case c == 0:
			for i := range files {
				touched = append(touched, i)
			}
			msg = "initial import"
		case adding:
			size := *addMin + g.r.IntN(*addMax-*addMin+1)
			w1, w2 := g.word(), g.word()
			f := &file{}
			if addsYAML(c) {
				f.path = fmt.Sprintf("deploy/%s/%s-%d.yaml", w1, w2, c)
				f.yaml = true
				f.lines = sized([]string{"# Code generated by confgen. DO NOT EDIT.", w2 + ":"}, size,
					func(l []string) []string { return append(l, g.yamlLine()) })
			} else {
				pkg := fmt.Sprintf("%s%d", w1, c%7)
				f.path = fmt.Sprintf("gen/%s/%s_%d.go", pkg, w2, c)
				f.lines = sized(append([]string{"// Code generated by apigen. DO NOT EDIT.", ""}, g.goHeader(pkg)...),
					size, g.goFunc)
			}
			files = append(files, f)
			touched = append(touched, len(files)-1)
			if c%4 == 0 {
				// Wire the new code in somewhere.
				i := g.r.IntN(len(files) - 1)
				edit(g, files[i], protected)
				touched = append(touched, i)
			}
			plantRemove(g, c, files, plantAt, removeAt)
			msg = fmt.Sprintf("%s: add generated %s code", f.path, w1)
		default:
			for range 1 + g.r.IntN(4) {
				i := g.r.IntN(*nfiles)
				if files[i].yaml && g.r.IntN(4) != 0 {
					i = (i + 1) % *nfiles // configuration changes less often
				}
				edit(g, files[i], protected)
				touched = append(touched, i)
			}
			touched = append(touched, plantRemove(g, c, files, plantAt, removeAt)...)
			msg = fmt.Sprintf("%s: %s %s handling", files[touched[0]].path, verbs[g.r.IntN(len(verbs))], g.word())
		}
		a := authors[g.r.IntN(len(authors))]
		ts := t0 + c*900 + g.r.IntN(600)
		fmt.Fprintf(w, "commit refs/heads/main\nauthor %s <%s> %d +0000\ncommitter %s <%s> %d +0000\n",
			a[0], a[1], ts, a[0], a[1], ts)
		fmt.Fprintf(w, "data %d\n%s\n", len(msg), msg)
		seen := map[int]bool{}
		for _, i := range touched {
			if seen[i] {
				continue
			}
			seen[i] = true
			data := strings.Join(files[i].lines, "\n") + "\n"
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", files[i].path, len(data), data)
		}
		w.WriteString("\n")
	}
	return w.Flush()
}

// plant is a token planted in a line of a file.
type plant struct {
	tok    string
	file   int
	line   string
	remove int // commit at which the line is deleted, or -1
}

// plantRemove adds the lines planted at commit c and deletes those removed
// at c, and returns the indexes of the files it changed.
func plantRemove(g *gener, c int, files []*file, plantAt, removeAt map[int][]*plant) []int {
	var touched []int
	for _, p := range plantAt[c] {
		f := files[p.file]
		at := min(len(f.lines), 10+g.r.IntN(max(1, len(f.lines)-10)))
		f.lines = append(f.lines[:at], append([]string{p.line}, f.lines[at:]...)...)
		touched = append(touched, p.file)
	}
	for _, p := range removeAt[c] {
		f := files[p.file]
		for k, l := range f.lines {
			if l == p.line {
				f.lines = append(f.lines[:k], f.lines[k+1:]...)
				break
			}
		}
		touched = append(touched, p.file)
	}
	return touched
}

// edit changes one to three lines of f, never a planted line.
func edit(g *gener, f *file, protected map[string]bool) {
	for range 1 + g.r.IntN(3) {
		k := 2 + g.r.IntN(max(1, len(f.lines)-2))
		if k >= len(f.lines) || protected[f.lines[k]] {
			continue
		}
		line := g.stmt()
		if f.yaml {
			line = g.yamlLine()
		}
		switch g.r.IntN(3) {
		case 0: // replace
			f.lines[k] = line
		case 1: // insert
			f.lines = append(f.lines[:k], append([]string{line}, f.lines[k:]...)...)
		default: // delete, keeping the file from shrinking away
			if len(f.lines) > 30 {
				f.lines = append(f.lines[:k], f.lines[k+1:]...)
			} else {
				f.lines[k] = line
			}
		}
	}
}

func count(args []string) error {
	fs := flag.NewFlagSet("count", flag.ContinueOnError)
	plantedPath := fs.String("planted", "", "planted tokens, one a line")
	format := fs.String("format", "latch", "report format: latch or gitleaks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *plantedPath == "" {
		return fmt.Errorf("usage: histgen count -planted FILE -format latch|gitleaks REPORT")
	}
	pb, err := os.ReadFile(*plantedPath)
	if err != nil {
		return err
	}
	planted := strings.Fields(string(pb))
	rf, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer rf.Close()
	var texts []string // secret and matched text of each finding
	switch *format {
	case "latch":
		var rep struct {
			Findings []struct{ Secret string } `json:"findings"`
		}
		if err := json.NewDecoder(rf).Decode(&rep); err != nil {
			return err
		}
		for _, f := range rep.Findings {
			texts = append(texts, f.Secret)
		}
	case "gitleaks":
		var rep []struct{ Secret, Match string }
		if err := json.NewDecoder(rf).Decode(&rep); err != nil && err != io.EOF {
			return err
		}
		for _, f := range rep {
			texts = append(texts, f.Secret+"\n"+f.Match)
		}
	default:
		return fmt.Errorf("unknown format %q", *format)
	}
	found := 0
	for _, p := range planted {
		for _, t := range texts {
			if strings.Contains(t, p) {
				found++
				break
			}
		}
	}
	fmt.Printf("%d %d %d\n", len(texts), found, len(planted))
	return nil
}
