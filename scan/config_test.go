package scan

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConfigPaths(t *testing.T) {
	c, err := ParseConfig([]byte(`
# comment
paths = ["testdata", "docs/examples/*.md", "**/fixtures/**", "/vendor/", "*.pem", "a/**/z.txt"]
fingerprints = [" ABCDEF0123456789abcdef0123456789 "]
`))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"testdata/x.go":             true,
		"pkg/testdata/deep/y.txt":   true,
		"testdata2/x.go":            false,
		"docs/examples/a.md":        true,
		"docs/examples/sub/a.md":    false,
		"docs/examples/a.txt":       false,
		"x/fixtures/y/z.json":       true,
		"fixtures/z.json":           true,
		"vendor/mod/file.go":        true,
		"src/vendor/file.go":        false,
		"keys/prod.pem":             true,
		"a/z.txt":                   true,
		"a/b/c/z.txt":               true,
		"b/a/z.txt":                 false,
		"./testdata/../src/main.go": false,
	} {
		if got := c.AllowsPath(p); got != want {
			t.Errorf("AllowsPath(%q) = %v, want %v", p, got, want)
		}
	}
	if !c.AllowsFingerprint("abcdef0123456789ABCDEF0123456789") || c.AllowsFingerprint("00") {
		t.Error("AllowsFingerprint")
	}
	var nilc *Config
	if nilc.AllowsPath("x") || nilc.AllowsFingerprint("x") {
		t.Error("nil Config allows")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, bad := range []string{`paths = "notalist"`, `paths = ["[unclosed"]`, `other = 1`, `paths = [""]`, `paths = [`,
		`fingerprints = ["xyz"]`, `fingerprints = ["abcdef0123456789abcdef012345678"]`,
		`fingerprints = ["abcdef0123456789abcdef0123456789a"]`, `fingerprints = ["ghcdef0123456789abcdef0123456789"]`,
		`fingerprints = [""]`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%q) succeeded", bad)
		}
	}
	dir := t.TempDir()
	if c, err := loadRootConfig(dir); c != nil || err != nil {
		t.Fatalf("missing file: %v %v", c, err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte("paths = 3"), 0o644)
	if _, err := loadRootConfig(dir); err == nil {
		t.Fatal("bad file accepted")
	}
}
