package scancmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/latchhq/latch/scan"
	"github.com/latchhq/latch/scan/scantest"
	"github.com/latchhq/latch/token"
)

// runCLI runs `latch scan args…` in process and returns its exit status and
// output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	exit = func(c int) {
		if code == 0 {
			code = c
		}
	}
	t.Cleanup(func() { exit = os.Exit })
	cmd := NewCommand()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	if err := cmd.Execute(); err != nil && code == 0 {
		code = -1
	}
	return code, out.String(), errb.String()
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type tree struct {
	dir                  string
	personal, app, bbdc  string
	inBinary, inGit, big string
	key, secret          string
	personalFP           string
}

// makeTree lays out a directory with credentials in scanned files and in
// places that must be skipped.
func makeTree(t *testing.T) *tree {
	g := scantest.New(7)
	tr := &tree{dir: t.TempDir()}
	tr.personal = g.Latch(token.Personal)
	tr.app = g.AppPassword()
	tr.bbdc = g.BBDC()
	tr.inBinary = g.Latch(token.API)
	tr.inGit = g.Latch(token.Repository)
	tr.big = g.Latch(token.OAuthAccess)
	tr.key, tr.secret = g.OAuthConsumer()
	write(t, filepath.Join(tr.dir, "clean.txt"), "nothing to see here\nsha: "+g.Hex(40)+"\n")
	write(t, filepath.Join(tr.dir, "src", "deploy.go"),
		"package deploy\n\nconst token = \""+tr.personal+"\"\n\nvar remote = \"https://ci:"+tr.app+"@bitbucket.org/t/r.git\"\n")
	write(t, filepath.Join(tr.dir, "etc", "bitbucket.env"),
		"# Bitbucket OAuth consumer\nBITBUCKET_KEY="+tr.key+"\nBITBUCKET_SECRET="+tr.secret+"\nBBDC_TOKEN="+tr.bbdc+"\n")
	write(t, filepath.Join(tr.dir, "img.bin"), "\x00\x01\x02"+tr.inBinary)
	write(t, filepath.Join(tr.dir, ".git", "config"), "[remote]\n\turl = "+tr.inGit+"\n")
	write(t, filepath.Join(tr.dir, "data", "dump.sql"), strings.Repeat("-- filler\n", 200)+tr.big+"\n")
	tr.personalFP = scan.FingerprintOf("latch-personal-token", tr.personal)
	return tr
}

func TestExitCodesAndText(t *testing.T) {
	tr := makeTree(t)
	code, out, errOut := runCLI(t, "", "--max-size", "1KB", tr.dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	deploy := filepath.Join(tr.dir, "src", "deploy.go")
	wantLine := fmt.Sprintf("%s:3:16: latch-personal-token %s fingerprint=%s", deploy, token.Redact(tr.personal), tr.personalFP)
	if !strings.Contains(out, wantLine) {
		t.Errorf("missing %q in\n%s", wantLine, out)
	}
	for _, s := range []string{tr.personal, tr.app, tr.bbdc, tr.secret} {
		if strings.Contains(out, s) {
			t.Errorf("output shows a whole secret without --show-secrets:\n%s", out)
		}
	}
	for _, s := range []string{tr.inBinary, tr.inGit, token.Redact(tr.big)} {
		if strings.Contains(out, s) {
			t.Errorf("found a secret that should have been skipped:\n%s", out)
		}
	}
	if !strings.Contains(out, "key="+tr.key) || !strings.Contains(errOut, "4 findings") {
		t.Errorf("output:\n%s\nstderr: %s", out, errOut)
	}

	// A larger --max-size reaches the dump; --show-secrets shows secrets.
	code, out, _ = runCLI(t, "", "--show-secrets", "--max-size", "1MiB", tr.dir)
	if code != 1 || !strings.Contains(out, tr.big) || !strings.Contains(out, tr.personal) || !strings.Contains(out, tr.secret) {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}

	if code, out, _ := runCLI(t, "", filepath.Join(tr.dir, "clean.txt")); code != 0 || out != "" {
		t.Fatalf("clean file: exit %d, output %q", code, out)
	}
	if code, _, errOut := runCLI(t, "", filepath.Join(tr.dir, "missing")); code != 2 || !strings.Contains(errOut, "missing") {
		t.Fatalf("missing file: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "--format", "xml", tr.dir); code != 2 {
		t.Fatalf("bad format: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", "--no-such-flag"); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", "--max-size", "lots", tr.dir); code != 2 {
		t.Fatalf("bad size: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", "--since", "HEAD", tr.dir); code != 2 {
		t.Fatalf("--since without --git: exit %d", code)
	}
}

func TestStdin(t *testing.T) {
	g := scantest.New(8)
	tok := g.Latch(token.OAuthRefresh)
	code, out, _ := runCLI(t, "diff --git a/x b/x\n+refresh = "+tok+"\n", "--format", "json", "-")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Path != "-" || rep.Findings[0].Line != 2 ||
		rep.Findings[0].Rule != "latch-oauth-refresh-token" || rep.Findings[0].Kind != "latf" ||
		rep.Findings[0].Secret != token.Redact(tok) || !rep.Findings[0].Redacted {
		t.Fatalf("findings %+v", rep.Findings)
	}
	if code, out, _ := runCLI(t, "just text\n", "-"); code != 0 || out != "" {
		t.Fatalf("clean stdin: exit %d %q", code, out)
	}
	// Standard input counts the bytes read, as a file does.
	in := "x " + tok + "\n"
	code, out, _ = runCLI(t, in, "--format", "json", "-")
	rep = jsonReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("exit %d %v\n%s", code, err, out)
	}
	if rep.Stats.Files != 1 || rep.Stats.Bytes != int64(len(in)) {
		t.Errorf("stats %+v, want 1 file of %d bytes", rep.Stats, len(in))
	}
	// With a file too, the bytes add up.
	file := filepath.Join(t.TempDir(), "f.txt")
	write(t, file, "clean\n")
	code, out, _ = runCLI(t, in, "--format", "json", file, "-")
	rep = jsonReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("exit %d %v\n%s", code, err, out)
	}
	if rep.Stats.Files != 2 || rep.Stats.Bytes != int64(len(in)+len("clean\n")) {
		t.Errorf("stats %+v, want 2 files of %d bytes", rep.Stats, len(in)+len("clean\n"))
	}
}

func TestJSON(t *testing.T) {
	tr := makeTree(t)
	code, out, _ := runCLI(t, "", "--format", "json", "--max-size", "1KB", tr.dir)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rules := map[string]jsonFinding{}
	for _, f := range rep.Findings {
		rules[f.Rule] = f
	}
	for _, id := range []string{"latch-personal-token", "bitbucket-app-password", "bitbucket-oauth-consumer", "bitbucket-dc-token"} {
		if _, ok := rules[id]; !ok {
			t.Errorf("no %s finding in %s", id, out)
		}
	}
	p := rules["latch-personal-token"]
	if p.Fingerprint != tr.personalFP || p.Line != 3 || p.Column != 16 || p.EndColumn != 16+token.Len || p.Kind != "latp" {
		t.Errorf("personal token finding %+v", p)
	}
	if rules["bitbucket-oauth-consumer"].Key != tr.key {
		t.Errorf("oauth finding %+v", rules["bitbucket-oauth-consumer"])
	}
	if rep.Stats.Files != 3 || rep.Stats.Skipped != 3 {
		t.Errorf("stats %+v", rep.Stats)
	}
	// A path scan without errors has neither "commits" nor "errors"; one
	// with an unreadable path lists it in "errors".
	if strings.Contains(out, `"commits"`) || strings.Contains(out, `"errors"`) {
		t.Errorf("commits or errors in a clean path scan:\n%s", out)
	}
	code, out, _ = runCLI(t, "", "--format", "json", filepath.Join(tr.dir, "clean.txt"), filepath.Join(tr.dir, "missing"))
	rep = jsonReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 2 || len(rep.Errors) != 1 ||
		!strings.Contains(rep.Errors[0], "missing") || strings.Contains(out, `"commits"`) {
		t.Errorf("exit %d %v\n%s", code, err, out)
	}
}

var sarifSchemaOnce = sync.OnceValues(func() (*jsonschema.Schema, error) {
	const name = "testdata/sarif-schema-2.1.0.json"
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, doc); err != nil {
		return nil, err
	}
	return c.Compile(name)
})

// sarifInvalid returns why the SARIF log out does not conform to the SARIF
// 2.1.0 JSON schema in testdata, or nil if it does.
func sarifInvalid(t *testing.T, out string) error {
	t.Helper()
	sch, err := sarifSchemaOnce()
	if err != nil {
		t.Fatalf("loading the SARIF schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// validSARIF fails the test unless out conforms to the SARIF 2.1.0 schema.
func validSARIF(t *testing.T, out string) {
	t.Helper()
	if err := sarifInvalid(t, out); err != nil {
		t.Errorf("SARIF does not conform to its schema: %v\n%s", err, out)
	}
}

// TestSARIF checks the report's structure against what SARIF 2.1.0 requires
// of the parts latch writes, and validates it against the SARIF schema.
func TestSARIF(t *testing.T) {
	tr := makeTree(t)
	code, out, _ := runCLI(t, "", "--format", "sarif", "--max-size", "1KB", tr.dir)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	validSARIF(t, out)
	// The schema check has teeth: a result without a message, or with a
	// region starting at column 0, is refused.
	for _, breakIt := range []func(result map[string]any){
		func(result map[string]any) { delete(result, "message") },
		func(result map[string]any) {
			result["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)["region"].(map[string]any)["startColumn"] = 0
		},
	} {
		var log map[string]any
		if err := json.Unmarshal([]byte(out), &log); err != nil {
			t.Fatal(err)
		}
		breakIt(log["runs"].([]any)[0].(map[string]any)["results"].([]any)[0].(map[string]any))
		broken, _ := json.Marshal(log)
		err := sarifInvalid(t, string(broken))
		if err == nil {
			t.Errorf("a broken SARIF passes the schema:\n%s", broken)
		}
		t.Logf("broken SARIF refused: %v", err)
	}
	var log map[string]any
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	if log["version"] != "2.1.0" || !strings.Contains(fmt.Sprint(log["$schema"]), "sarif-2.1.0") {
		t.Fatalf("version %v schema %v", log["version"], log["$schema"])
	}
	runs, _ := log["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("runs: %v", log["runs"])
	}
	run := runs[0].(map[string]any)
	driver := run["tool"].(map[string]any)["driver"].(map[string]any)
	if driver["name"] == "" {
		t.Error("driver without name")
	}
	rules := driver["rules"].([]any)
	if len(rules) != len(scan.DefaultRules()) {
		t.Fatalf("%d rules", len(rules))
	}
	ruleIDs := map[string]int{}
	for i, r := range rules {
		rm := r.(map[string]any)
		id, _ := rm["id"].(string)
		if id == "" || rm["shortDescription"].(map[string]any)["text"] == "" {
			t.Errorf("rule %d: %v", i, rm)
		}
		ruleIDs[id] = i
	}
	results := run["results"].([]any)
	if len(results) != 4 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		rm := r.(map[string]any)
		id, _ := rm["ruleId"].(string)
		idx, ok := ruleIDs[id]
		if !ok || int(rm["ruleIndex"].(float64)) != idx {
			t.Errorf("result ruleId %q ruleIndex %v", id, rm["ruleIndex"])
		}
		if rm["message"].(map[string]any)["text"] == "" {
			t.Error("result without message")
		}
		locs := rm["locations"].([]any)
		if len(locs) != 1 {
			t.Fatalf("locations %v", locs)
		}
		pl := locs[0].(map[string]any)["physicalLocation"].(map[string]any)
		uri := pl["artifactLocation"].(map[string]any)["uri"].(string)
		region := pl["region"].(map[string]any)
		if uri == "" || region["startLine"].(float64) < 1 || region["startColumn"].(float64) < 1 ||
			region["endLine"].(float64) < region["startLine"].(float64) {
			t.Errorf("location %v", pl)
		}
		pf := rm["partialFingerprints"].(map[string]any)
		if fp, _ := pf[fingerprintKey].(string); len(fp) != 32 {
			t.Errorf("partialFingerprints %v", pf)
		}
		if strings.Contains(out, tr.personal) {
			t.Error("SARIF shows a whole secret")
		}
	}
	// A clean scan is a valid log with no results.
	code, out, _ = runCLI(t, "", "--format", "sarif", filepath.Join(tr.dir, "clean.txt"))
	if code != 0 || !strings.Contains(out, `"results": []`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	validSARIF(t, out)
	// Standard input, with several rules: the URI "stdin" and the key
	// property.
	code, out, _ = runCLI(t, "key = "+tr.key+"\nsecret = "+tr.secret+"\npersonal = "+tr.personal+"\n",
		"--format", "sarif", "-")
	if code != 1 || !strings.Contains(out, `"uri": "stdin"`) {
		t.Fatalf("stdin: exit %d\n%s", code, out)
	}
	validSARIF(t, out)
}

func TestAllowlist(t *testing.T) {
	tr := makeTree(t)
	// Root config: skip etc/ and the personal token's fingerprint.
	write(t, filepath.Join(tr.dir, scan.ConfigFile), "paths = [\"etc\"]\nfingerprints = [\""+tr.personalFP+"\"]\n")
	code, out, _ := runCLI(t, "", "--max-size", "1KB", tr.dir)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "bitbucket-app-password") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	// Inline marker silences the last one.
	deploy := filepath.Join(tr.dir, "src", "deploy.go")
	data, _ := os.ReadFile(deploy)
	write(t, deploy, strings.Replace(string(data), ".git\"\n", ".git\" // latch:allow\n", 1))
	if code, out, _ := runCLI(t, "", "--max-size", "1KB", tr.dir); code != 0 {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	// --config replaces the root file; globs with ** and basenames.
	cfg := filepath.Join(t.TempDir(), "allow.toml")
	write(t, cfg, "paths = [\"**/*.env\", \"src/*.go\"]\n")
	code, out, _ = runCLI(t, "", "--config", cfg, "--max-size", "1MiB", tr.dir)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "dump.sql") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	write(t, cfg, "path = [\"typo\"]\n")
	if code, _, errOut := runCLI(t, "", "--config", cfg, tr.dir); code != 2 || !strings.Contains(errOut, "unknown key") {
		t.Fatalf("bad config: exit %d %s", code, errOut)
	}
	// A fingerprint not of the printed shape (32 hexadecimal characters)
	// is an error, whether in --config or in the root file.
	write(t, cfg, "fingerprints = [\""+tr.personalFP+"\", \"xyz\"]\n")
	if code, _, errOut := runCLI(t, "", "--config", cfg, tr.dir); code != 2 || !strings.Contains(errOut, `bad fingerprint "xyz"`) {
		t.Fatalf("bad fingerprint: exit %d %s", code, errOut)
	}
	write(t, filepath.Join(tr.dir, scan.ConfigFile), "fingerprints = [\"latch-personal-token\"]\n")
	if code, _, errOut := runCLI(t, "", tr.dir); code != 2 || !strings.Contains(errOut, `bad fingerprint "latch-personal-token"`) {
		t.Fatalf("bad fingerprint in the root file: exit %d %s", code, errOut)
	}
}

// git runs git in dir with a fixed identity and dates, ignoring the user's
// configuration.
func git(t *testing.T, dir string, date int, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	d := fmt.Sprintf("%d +0000", 1700000000+date*3600)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada Lovelace", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Lovelace", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_AUTHOR_DATE="+d, "GIT_COMMITTER_DATE="+d)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestHistory(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	g := scantest.New(11)
	removed, kept, app := g.Latch(token.Personal), g.Latch(token.API), g.AppPassword()
	dir := t.TempDir()
	git(t, dir, 0, "init", "-q", "-b", "main")
	write(t, filepath.Join(dir, "README"), "hello\n")
	git(t, dir, 1, "add", ".")
	git(t, dir, 1, "commit", "-qm", "init")
	write(t, filepath.Join(dir, "config", "app.env"), "TOKEN="+removed+"\n")
	git(t, dir, 2, "add", ".")
	git(t, dir, 2, "commit", "-qm", "add token")
	added := git(t, dir, 2, "rev-parse", "HEAD")
	// A second version of the file still holds the secret: one finding.
	write(t, filepath.Join(dir, "config", "app.env"), "# settings\nTOKEN="+removed+"\n")
	git(t, dir, 3, "commit", "-qam", "comment")
	write(t, filepath.Join(dir, "config", "app.env"), "# settings\nTOKEN=${TOKEN}\n")
	git(t, dir, 4, "commit", "-qam", "remove token")
	base := git(t, dir, 4, "rev-parse", "HEAD")
	// What came so far is packed, what follows stays loose: the scan reads
	// some blobs from a pack and the others through git.
	git(t, dir, 4, "repack", "-q", "-d")
	write(t, filepath.Join(dir, "lib", "client.py"), "API = '"+kept+"'\n")
	write(t, filepath.Join(dir, "blob.bin"), "\x00"+g.Latch(token.OAuthAccess))
	git(t, dir, 5, "add", ".")
	git(t, dir, 5, "commit", "-qm", "client")
	head := git(t, dir, 5, "rev-parse", "HEAD")
	// On a branch only: an app password.
	git(t, dir, 6, "checkout", "-qb", "feature")
	write(t, filepath.Join(dir, "deploy.sh"), "git push https://me:"+app+"@bitbucket.org/t/r\n")
	git(t, dir, 6, "add", ".")
	git(t, dir, 6, "commit", "-qm", "deploy")
	git(t, dir, 7, "checkout", "-q", "main")

	code, out, errOut := runCLI(t, "", "--git", dir, "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 3 {
		t.Fatalf("%d findings:\n%s", len(rep.Findings), out)
	}
	f0, f1, f2 := rep.Findings[0], rep.Findings[1], rep.Findings[2]
	if f0.Rule != "latch-personal-token" || f0.Path != "config/app.env" || f0.Commit != added ||
		f0.Author != "Ada Lovelace" || f0.Email != "ada@example.com" || f0.Date != "2023-11-15T00:13:20Z" ||
		f0.InHEAD == nil || *f0.InHEAD || f0.Line != 1 {
		t.Errorf("removed secret: %+v", f0)
	}
	if f1.Rule != "latch-api-token" || f1.Path != "lib/client.py" || f1.Commit != head || f1.InHEAD == nil || !*f1.InHEAD {
		t.Errorf("kept secret: %+v", f1)
	}
	if f2.Rule != "bitbucket-app-password" || f2.Path != "deploy.sh" || f2.InHEAD == nil || *f2.InHEAD {
		t.Errorf("branch secret: %+v", f2)
	}
	if rep.Stats.Commits == nil || *rep.Stats.Commits != 6 || rep.Stats.Skipped != 1 {
		t.Errorf("stats %+v", rep.Stats)
	}

	// The SARIF of a history scan, with its commit properties, is valid.
	if code, sarif, _ := runCLI(t, "", "--git", dir, "--format", "sarif"); code != 1 || !strings.Contains(sarif, `"commitSha"`) {
		t.Errorf("SARIF history scan: exit %d\n%s", code, sarif)
	} else {
		validSARIF(t, sarif)
	}

	// One worker (one cat-file) finds the same.
	_, out1, _ := runCLI(t, "", "--git", dir, "--format", "json", "--workers", "1")
	if out1 != out {
		t.Errorf("--workers 1 differs:\n%s", out1)
	}

	// However the objects are stored, the report is the same: all in one
	// pack of deltas, and with an unreachable blob holding a secret in a
	// pack of its own (not part of the history: not reported).
	git(t, dir, 7, "repack", "-q", "-adf")
	if loose := git(t, dir, 7, "count-objects"); !strings.HasPrefix(loose, "0 objects") {
		t.Fatalf("objects left loose: %s", loose)
	}
	if _, packed, _ := runCLI(t, "", "--git", dir, "--format", "json"); packed != out {
		t.Errorf("all packed differs:\n%s", packed)
	}
	orphan := filepath.Join(t.TempDir(), "orphan.env")
	write(t, orphan, "TOKEN="+g.Latch(token.Personal)+"\n")
	id := git(t, dir, 7, "hash-object", "-w", orphan)
	pack := exec.Command("git", "-C", dir, "pack-objects", "-q", filepath.Join(".git", "objects", "pack", "pack"))
	pack.Stdin = strings.NewReader(id + "\n")
	if b, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("pack-objects: %v %s", err, b)
	}
	if _, packed, _ := runCLI(t, "", "--git", dir, "--format", "json"); packed != out {
		t.Errorf("with an unreachable packed blob:\n%s", packed)
	}

	// Text output names the commit.
	_, out, _ = runCLI(t, "", "--git", dir)
	if !strings.Contains(out, "commit "+added+" by Ada Lovelace <ada@example.com>") || !strings.Contains(out, "at HEAD: no") {
		t.Errorf("text:\n%s", out)
	}

	// --since: only what is new after base.
	code, out, _ = runCLI(t, "", "--git", dir, "--since", base, "--format", "json")
	rep = jsonReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || len(rep.Findings) != 2 ||
		rep.Findings[0].Rule != "latch-api-token" || rep.Findings[1].Rule != "bitbucket-app-password" {
		t.Fatalf("--since: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "", "--git", dir, "--since", "feature"); code != 0 {
		t.Fatalf("--since feature: exit %d\n%s", code, out) // every ref is in feature
	}
	// A history scan states its commits in JSON, even when it walked none.
	if code, out, _ := runCLI(t, "", "--git", dir, "--since", "feature", "--format", "json"); code != 0 || !strings.Contains(out, `"commits": 0`) {
		t.Fatalf("--since feature: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "", "--git", dir, "--since", "no-such-rev"); code != 2 || !strings.Contains(errOut, "no-such-rev") {
		t.Fatalf("bad --since: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", "--git", t.TempDir()); code != 2 {
		t.Fatalf("not a repository: exit %d", code)
	}

	// The committed allowlist applies to a history scan.
	write(t, filepath.Join(dir, scan.ConfigFile), "paths = [\"config\", \"deploy.sh\"]\n")
	git(t, dir, 8, "add", ".")
	git(t, dir, 8, "commit", "-qm", "allowlist")
	if code, out, _ := runCLI(t, "", "--git", dir); code != 1 || strings.Count(out, "commit ") != 1 {
		t.Fatalf("allowlisted history: exit %d\n%s", code, out)
	}
}

// TestHistoryUserConfig scans with a global git configuration that changes
// what `git log` prints, the way a user's ~/.gitconfig may: the root
// commit's secret is still found, with the author's name intact.
func TestHistoryUserConfig(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	g := scantest.New(13)
	secret := g.Latch(token.Personal)
	dir := t.TempDir()
	git(t, dir, 0, "init", "-q", "-b", "main")
	write(t, filepath.Join(dir, "conf dir", "é.env"), "TOKEN="+secret+"\n")
	git(t, dir, 1, "add", ".")
	git(t, dir, 1, "commit", "-qm", "init", "--author", "Zoë Noël <zoe@example.com>")
	root := git(t, dir, 1, "rev-parse", "HEAD")

	cfg := filepath.Join(t.TempDir(), "gitconfig")
	write(t, cfg, `[log]
	showRoot = false
	showSignature = true
	decorate = full
	abbrevCommit = true
[color]
	ui = always
[diff]
	noprefix = true
	renames = copies
[core]
	quotepath = true
[i18n]
	logOutputEncoding = ISO-8859-1
[format]
	pretty = fuller
`)
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	code, out, errOut := runCLI(t, "", "--git", dir, "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 {
		t.Fatalf("%d findings:\n%s", len(rep.Findings), out)
	}
	if f := rep.Findings[0]; f.Path != "conf dir/é.env" || f.Commit != root || f.Author != "Zoë Noël" ||
		f.InHEAD == nil || !*f.InHEAD {
		t.Errorf("finding: %+v", f)
	}
}

func TestVerify(t *testing.T) {
	g := scantest.New(12)
	var toks []string
	var in strings.Builder
	for i := 0; i < 150; i++ {
		toks = append(toks, g.Latch(token.Kinds[i%len(token.Kinds)]))
		fmt.Fprintf(&in, "t%d = %s\n", i, toks[i])
	}
	fmt.Fprintf(&in, "again = %s\napp = %s\n", toks[0], g.AppPassword())
	status := func(tok string) string {
		return []string{"active", "revoked", "expired", "unknown"}[strings.IndexByte(token.Alphabet, tok[10])%4]
	}
	var mu sync.Mutex
	var batches []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/rest/latch/1.0/credentials/check" ||
			r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req checkRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		batches = append(batches, len(req.Credentials))
		mu.Unlock()
		var resp checkResponse
		for _, c := range req.Credentials {
			k, err := token.Parse(c)
			if err != nil {
				http.Error(w, "not a latch token", http.StatusBadRequest)
				return
			}
			resp.Results = append(resp.Results, checkResult{ID: "id-" + c[len(c)-4:], Kind: string(k), Status: status(c)})
		}
		json.NewEncoder(w).Encode(resp)
	}))
	defer srv.Close()

	code, out, errOut := runCLI(t, in.String(), "--verify", srv.URL+"/", "--format", "json", "-")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(batches) != 2 || batches[0] != 100 || batches[1] != 50 {
		t.Errorf("batches %v, want [100 50]", batches)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 152 {
		t.Fatalf("%d findings", len(rep.Findings))
	}
	for i, f := range rep.Findings[:151] {
		tok := toks[i%150]
		if f.Status != status(tok) || f.CredentialID != "id-"+tok[len(tok)-4:] {
			t.Fatalf("finding %d: status %q id %q, want %q", i, f.Status, f.CredentialID, status(tok))
		}
	}
	if last := rep.Findings[151]; last.Rule != "bitbucket-app-password" || last.Status != "" {
		t.Errorf("app password got a status: %+v", last)
	}
	_, out, _ = runCLI(t, in.String(), "--verify", srv.URL, "-")
	if !strings.Contains(out, "status="+status(toks[0])) {
		t.Errorf("text output without status:\n%s", out[:200])
	}

	// A failing server is an error, and the findings are still printed.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"context":null,"message":"Authentication required","exceptionName":null}]}`))
	}))
	defer bad.Close()
	code, out, errOut = runCLI(t, in.String(), "--verify", bad.URL, "-")
	if code != 2 || !strings.Contains(errOut, "Authentication required") || !strings.Contains(out, "latch-") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "10MB": 10_000_000, "10MiB": 10 << 20, "512k": 512 << 10, "1GiB": 1 << 30, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MB", "ten", "10XB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestSARIFURI(t *testing.T) {
	for in, want := range map[string]string{"-": "stdin", "src/a b.go": "src/a%20b.go", "./x.go": "x.go", "/tmp/k.pem": "file:///tmp/k.pem"} {
		if got := sarifURI(in); got != want {
			t.Errorf("sarifURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOverlappingArgs scans the same files through arguments that repeat and
// overlap: each file is scanned, and each finding reported, once.
func TestOverlappingArgs(t *testing.T) {
	g := scantest.New(14)
	dir := t.TempDir()
	small, deep := g.Latch(token.Personal), g.Latch(token.API)
	write(t, filepath.Join(dir, "ms", "small.txt"), "TOKEN="+small+"\n")
	write(t, filepath.Join(dir, "ms", "sub", "deep.txt"), "TOKEN="+deep+"\n")
	write(t, filepath.Join(dir, "ms", ".git", "config"), "clean\n")
	t.Chdir(dir)
	for _, args := range [][]string{
		{"ms", "ms/small.txt", "ms"},
		{"ms/small.txt", "./ms/", "ms/sub", filepath.Join(dir, "ms")},
		{"ms/sub", "ms", "ms/./small.txt", "ms/sub/../small.txt"},
	} {
		code, out, errOut := runCLI(t, "", append([]string{"--format", "json"}, args...)...)
		var rep jsonReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
			t.Fatalf("%q: exit %d %v\n%s%s", args, code, err, out, errOut)
		}
		if len(rep.Findings) != 2 || rep.Stats.Files != 2 || rep.Stats.Skipped != 1 {
			t.Errorf("%q: %d findings, stats %+v, want 2 findings in 2 files, 1 skipped:\n%s", args, len(rep.Findings), rep.Stats, out)
		}
	}
}
