// Command benchtool supports bench/scan.sh: it generates a corpus of
// source-like text with planted credentials and look-alikes (gen), and scores
// the reports of latch scan, gitleaks and grep against the corpus's truth file
// (score).
//
//	benchtool gen -out DIR -size MB [-seed N] [-per-kind N]
//	benchtool score -truth DIR/truth.tsv -format latch|gitleaks|grep REPORT
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/latchhq/latch/scan"
	"github.com/latchhq/latch/scan/scantest"
	"github.com/latchhq/latch/token"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool gen|score …")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "score":
		err = score(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(2)
	}
}

// plant is a credential or look-alike to insert: its lines, and which of
// them holds the secret (and the key, for pairs).
type plant struct {
	kind      string // truth kind (rule ID), or "decoy:…"
	lines     []string
	secretAt  int // index in lines of the secret's first line
	secretEnd int // index of its last line
	keyAt     int // index of the key's line, or -1
	secret    string
	isolated  bool // needs a file with no Bitbucket keyword
}

// hasKeyword reports whether data holds a keyword of a keyword-gated rule.
func hasKeyword(data []byte) bool {
	l := strings.ToLower(string(data))
	return strings.Contains(l, "bitbucket") || strings.Contains(l, "bbdc") || strings.Contains(l, "stash")
}

// base is one file of the Go distribution used as filler.
type base struct {
	rel  string
	data []byte
}

func gen(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ExitOnError)
	out := fl.String("out", "bench/corpus", "output directory")
	sizeMB := fl.Int("size", 200, "corpus size in MB (10^6 bytes)")
	seed := fl.Uint64("seed", 1, "random seed")
	perKind := fl.Int("per-kind", 50, "credentials planted per kind, and look-alikes per kind")
	src := fl.String("src", filepath.Join(goRoot(), "src"), "directory of source text to copy")
	fl.Parse(args)

	// Filler: text files of the Go tree in which latch finds nothing, so
	// that the truth file is complete.
	s := scan.NewScanner()
	var bases []base
	var total int
	err := filepath.WalkDir(*src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 || len(data) > 1<<20 || scan.IsBinary(data) || len(s.Scan(data, p)) > 0 {
			return nil
		}
		rel, _ := filepath.Rel(*src, p)
		bases = append(bases, base{rel: rel, data: data})
		total += len(data)
		return nil
	})
	if err != nil || total == 0 {
		return fmt.Errorf("reading %s: %v (%d bytes)", *src, err, total)
	}
	g := scantest.New(*seed)
	plants := makePlants(g, *perKind)

	// Rounds of copies of the filler, each under rNN/, until the size.
	type file struct {
		path string
		b    *base
		ins  map[int][]*plant // by line index
	}
	var files []*file
	want := int64(*sizeMB) * 1000 * 1000
	var size int64
	for round := 0; size < want; round++ {
		for i := range bases {
			if size >= want {
				break
			}
			files = append(files, &file{path: fmt.Sprintf("r%02d/%s", round, bases[i].rel), b: &bases[i]})
			size += int64(len(bases[i].data))
		}
	}
	// Look-alikes that are harmless only far from a Bitbucket keyword go to
	// files with no keyword and no other plant; the rest anywhere.
	slices.SortStableFunc(plants, func(a, b plant) int {
		switch {
		case a.isolated == b.isolated:
			return 0
		case b.isolated:
			return -1
		}
		return 1
	})
	for i := range plants {
		var f *file
		for {
			f = files[g.Intn(len(files))]
			if !plants[i].isolated || f.ins == nil && !hasKeyword(f.b.data) {
				break
			}
		}
		n := strings.Count(string(f.b.data), "\n")
		if f.ins == nil {
			f.ins = map[int][]*plant{}
		}
		at := g.Intn(n + 1)
		f.ins[at] = append(f.ins[at], &plants[i])
	}

	// The copies include .go files: keep them out of the repository's
	// module (`go test ./...`) with a leading underscore and a go.mod.
	filesDir := filepath.Join(*out, "_files")
	if err := os.RemoveAll(filesDir); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "go.mod"), []byte("module benchcorpus\n"), 0o644); err != nil {
		return err
	}
	truth, err := os.Create(filepath.Join(*out, "truth.tsv"))
	if err != nil {
		return err
	}
	defer truth.Close()
	tw := bufio.NewWriter(truth)
	fmt.Fprintln(tw, "# kind\tpath\tline\tendLine\tkeyLine\tsecret")
	var written int64
	for _, f := range files {
		dst := filepath.Join(filesDir, f.path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		var b strings.Builder
		lines := strings.SplitAfter(string(f.b.data), "\n")
		lineNo := 1
		open := false // the last line written has no newline yet
		emit := func(at int) {
			for _, p := range f.ins[at] {
				if open {
					b.WriteString("\n")
					lineNo++
					open = false
				}
				if !strings.HasPrefix(p.kind, "decoy:") {
					key := 0
					if p.keyAt >= 0 {
						key = lineNo + p.keyAt
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", p.kind, filepath.Join(filesDir, f.path),
						lineNo+p.secretAt, lineNo+p.secretEnd, key, strings.ReplaceAll(p.secret, "\n", `\n`))
				}
				for _, l := range p.lines {
					b.WriteString(l + "\n")
					lineNo++
				}
			}
		}
		for i, l := range lines {
			emit(i)
			b.WriteString(l)
			if strings.HasSuffix(l, "\n") {
				lineNo++
			} else {
				open = l != ""
			}
		}
		emit(len(lines))
		if err := os.WriteFile(dst, []byte(b.String()), 0o644); err != nil {
			return err
		}
		written += int64(b.Len())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var prefixes []string
	for _, r := range scan.DefaultRules() {
		if r.Prefix != "" {
			prefixes = append(prefixes, r.Prefix)
		}
	}
	if err := os.WriteFile(filepath.Join(*out, "prefixes.txt"), []byte(strings.Join(prefixes, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("corpus: %d files, %.1f MB, %d planted credentials, %d look-alikes\n", len(files),
		float64(written)/1e6, countPlants(plants, false), countPlants(plants, true))
	return nil
}

func countPlants(ps []plant, decoys bool) int {
	n := 0
	for _, p := range ps {
		if strings.HasPrefix(p.kind, "decoy:") == decoys {
			n++
		}
	}
	return n
}

func one(kind, line, secret string) plant {
	return plant{kind: kind, lines: []string{line}, keyAt: -1, secret: secret}
}

// makePlants returns perKind credentials of every rule, in the contexts they
// are met in, and perKind look-alikes of every sort.
func makePlants(g *scantest.Gen, perKind int) []plant {
	var ps []plant
	latchIDs := map[token.Kind]string{}
	for _, r := range scan.LatchRules() {
		latchIDs[r.Kind] = r.ID
	}
	latchCtx := []string{"\ttoken := %q", "// export LATCH_TOKEN=%s", "\treq.Header.Set(\"Authorization\", \"Bearer %s\")"}
	for i := 0; i < perKind; i++ {
		for _, k := range token.Kinds {
			t := g.Latch(k)
			ps = append(ps, one(latchIDs[k], fmt.Sprintf(latchCtx[g.Intn(len(latchCtx))], t), t))
		}
		t := g.BBDC()
		ps = append(ps, one("bitbucket-dc-token", "\tbbdcToken = \""+t+"\" // Bitbucket Data Center", t))
		body := g.BBDCBody()
		ps = append(ps, plant{kind: "bitbucket-dc-token-unprefixed", keyAt: -1, secret: body, secretAt: 1, secretEnd: 1,
			lines: []string{"\t// Bitbucket Server HTTP access token", "\tauth := \"" + body + "\""}})
		t = g.AppPassword()
		ps = append(ps, one("bitbucket-app-password", "\tremote := \"https://ci-bot:"+t+"@bitbucket.org/acme/app.git\"", t))
		t = g.AtlassianAPIToken()
		ps = append(ps, one("atlassian-api-token", "\tjiraToken := \""+t+"\"", t))
		t = g.CloudAccessToken()
		ps = append(ps, one("bitbucket-access-token", "\t// git clone https://x-token-auth:"+t+"@bitbucket.org/acme/app.git", t))
		key, secret := g.OAuthConsumer()
		ps = append(ps, plant{kind: "bitbucket-oauth-consumer", keyAt: 1, secretAt: 2, secretEnd: 2, secret: secret,
			lines: []string{"\t// Bitbucket OAuth consumer", "\tclientID := \"" + key + "\"", "\tclientSecret := \"" + secret + "\""}})
		var pemText string
		switch i % 3 {
		case 0:
			pemText, _ = g.OpenSSHKey()
		case 1:
			pemText, _ = g.ECKey()
		default:
			pemText, _ = g.RSAKey(2048)
		}
		kl := strings.Split(strings.TrimSuffix(pemText, "\n"), "\n")
		lines := append([]string{"const deployKey = `" + kl[0]}, kl[1:]...)
		lines = append(lines, "`")
		ps = append(ps, plant{kind: "ssh-private-key", lines: lines, keyAt: -1, secretEnd: len(kl) - 1, secret: pemText})

		// Look-alikes.
		ps = append(ps,
			one("decoy:latch-checksum", fmt.Sprintf("\ttoken := %q", g.LatchBadChecksum(token.Kinds[i%len(token.Kinds)])), ""),
			one("decoy:bbdc-shape", "\tbbdcToken = \""+g.BBDCBadShape()+"\"", ""),
			plant{kind: "decoy:bbdc-no-keyword", keyAt: -1, isolated: true, lines: []string{"\tauth := \"" + g.BBDCBody() + "\""}},
			one("decoy:atbb-checksum", "\tpassword := \""+g.AppPasswordBadChecksum()+"\"", ""),
			one("decoy:atatt-checksum", "\tjiraToken := \""+g.AtlassianBadChecksum()+"\"", ""),
			one("decoy:github-checksum", "\tghToken := \"ghp_"+g.Alnum(36)+"\"", ""),
			one("decoy:sha256", "\tsum := \""+g.Hex(64)+"\"", ""),
			one("decoy:uuid", "\tid := \""+g.UUID()+"\"", ""),
			one("decoy:base64", "\tblob := \""+g.Base64(44)+"\"", ""),
			one("decoy:secret-word", "\tapiSecret := \""+g.Alnum(32)+"\"", ""),
			plant{kind: "decoy:truncated-key", keyAt: -1, lines: strings.Split(strings.TrimSuffix(g.TruncatedKey(), "\n"), "\n")},
		)
		key, secret = g.OAuthConsumer()
		ps = append(ps, plant{kind: "decoy:oauth-no-keyword", keyAt: -1, isolated: true,
			lines: []string{"\tclientID := \"" + key + "\"", "\tclientSecret := \"" + secret + "\""}})
	}
	return ps
}

// truthEntry is a line of truth.tsv.
type truthEntry struct {
	kind, path             string
	line, endLine, keyLine int
}

type loc struct {
	path string
	line int
}

func score(args []string) error {
	fl := flag.NewFlagSet("score", flag.ExitOnError)
	truthFile := fl.String("truth", "bench/corpus/truth.tsv", "truth file")
	format := fl.String("format", "latch", "report format: latch (JSON), gitleaks (JSON) or grep (path:line:match)")
	kinds := fl.Bool("kinds", false, "print recall per kind")
	fl.Parse(args)
	if fl.NArg() != 1 {
		return fmt.Errorf("score: want one report file")
	}
	truth, err := readTruth(*truthFile)
	if err != nil {
		return err
	}
	found, err := readReport(fl.Arg(0), *format)
	if err != nil {
		return err
	}
	// Index truth by path for location matching.
	byPath := map[string][]int{}
	for i, t := range truth {
		byPath[t.path] = append(byPath[t.path], i)
	}
	hit := make([]bool, len(truth))
	tp := 0
	for _, f := range found {
		ok := false
		for _, i := range byPath[f.path] {
			t := truth[i]
			if f.line >= t.line && f.line <= t.endLine || f.line == t.keyLine {
				hit[i], ok = true, true
			}
		}
		if ok {
			tp++
		}
	}
	recalled := 0
	perKind := map[string][2]int{}
	for i, h := range hit {
		c := perKind[truth[i].kind]
		c[1]++
		if h {
			recalled++
			c[0]++
		}
		perKind[truth[i].kind] = c
	}
	precision := 1.0
	if len(found) > 0 {
		precision = float64(tp) / float64(len(found))
	}
	fmt.Printf("recall %.1f%% (%d/%d) precision %.1f%% (%d/%d)\n", 100*float64(recalled)/float64(len(truth)),
		recalled, len(truth), 100*precision, tp, len(found))
	if *kinds {
		var ks []string
		for k := range perKind {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		for _, k := range ks {
			fmt.Printf("  %-32s %d/%d\n", k, perKind[k][0], perKind[k][1])
		}
	}
	return nil
}

func readTruth(name string) ([]truthEntry, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []truthEntry
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) < 5 {
			return nil, fmt.Errorf("bad truth line %q", l)
		}
		t := truthEntry{kind: f[0], path: filepath.Clean(f[1])}
		t.line, _ = strconv.Atoi(f[2])
		t.endLine, _ = strconv.Atoi(f[3])
		t.keyLine, _ = strconv.Atoi(f[4])
		out = append(out, t)
	}
	return out, nil
}

func readReport(name, format string) ([]loc, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []loc
	switch format {
	case "latch":
		var rep struct {
			Findings []struct {
				Path string `json:"path"`
				Line int    `json:"line"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, f := range rep.Findings {
			out = append(out, loc{filepath.Clean(f.Path), f.Line})
		}
	case "gitleaks":
		var rep []struct {
			File      string
			StartLine int
		}
		if len(strings.TrimSpace(string(data))) > 0 {
			if err := json.Unmarshal(data, &rep); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		for _, f := range rep {
			out = append(out, loc{filepath.Clean(f.File), f.StartLine})
		}
	case "grep":
		for _, l := range strings.Split(string(data), "\n") {
			// path:line:match
			f := strings.SplitN(l, ":", 3)
			if len(f) < 3 {
				continue
			}
			n, err := strconv.Atoi(f[1])
			if err != nil {
				continue
			}
			out = append(out, loc{filepath.Clean(f[0]), n})
		}
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	return out, nil
}

// goRoot is the Go installation's root, as the go command reports it.
func goRoot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
