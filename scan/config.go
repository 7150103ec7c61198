package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// ConfigFile is the name of the allowlist file looked for in a scanned root.
const ConfigFile = ".latchscan.toml"

// Config is an allowlist, as read from a .latchscan.toml file:
//
//	# Paths (globs, relative to the scanned root, '/' separated) not scanned.
//	paths = ["testdata", "docs/examples/*.md", "**/fixtures/**"]
//	# Fingerprints of findings known to be harmless.
//	fingerprints = ["3f1c0d8b5a9e4e7f2b6a1c0d9e8f7a6b"]
//
// A glob without '/' matches any single path element (a file or directory
// name at any depth); a glob with a '/' (a leading one included, as in
// "/vendor") is matched from the root, element by element, where '*' and '?' stay within an element and '**' spans any number
// of elements. A glob that matches a directory covers everything under it.
type Config struct {
	Paths        []string `toml:"paths"`
	Fingerprints []string `toml:"fingerprints"`

	fps map[string]bool
}

// ParseConfig parses the TOML text of a .latchscan.toml file. Unknown keys,
// malformed globs and fingerprints not of the shape FingerprintOf returns
// (32 hexadecimal characters, in either case) are errors.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("scan: parsing allowlist: %w", err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		return nil, fmt.Errorf("scan: parsing allowlist: unknown key %q (want paths, fingerprints)", un[0].String())
	}
	for i, p := range c.Paths {
		// A leading '/' anchors the glob at the root: keep one.
		p = strings.TrimSuffix(p, "/")
		if strings.HasPrefix(p, "/") {
			p = "/" + strings.TrimLeft(p, "/")
		}
		if strings.Trim(p, "/") == "" {
			return nil, fmt.Errorf("scan: parsing allowlist: empty path glob")
		}
		for _, el := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			if _, err := path.Match(el, ""); err != nil {
				return nil, fmt.Errorf("scan: parsing allowlist: bad glob %q: %w", c.Paths[i], err)
			}
		}
		c.Paths[i] = p
	}
	c.fps = make(map[string]bool, len(c.Fingerprints))
	for _, fp := range c.Fingerprints {
		norm := strings.ToLower(strings.TrimSpace(fp))
		if !isFingerprint(norm) {
			return nil, fmt.Errorf("scan: parsing allowlist: bad fingerprint %q (want 32 hexadecimal characters, as printed with a finding)", fp)
		}
		c.fps[norm] = true
	}
	return &c, nil
}

// isFingerprint reports whether s, lowercased, has the shape of what
// FingerprintOf returns.
func isFingerprint(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// LoadConfig reads and parses the allowlist file name.
func LoadConfig(name string) (*Config, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("scan: reading allowlist: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, name)
	}
	return c, nil
}

// loadRootConfig reads dir/.latchscan.toml, or returns nil if there is none.
func loadRootConfig(dir string) (*Config, error) {
	c, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return c, err
}

// AllowsPath reports whether the path rel ('/'-separated, relative to the
// scanned root) is allowlisted. A nil Config allows nothing.
func (c *Config) AllowsPath(rel string) bool {
	if c == nil || len(c.Paths) == 0 {
		return false
	}
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	els := strings.Split(rel, "/")
	for _, p := range c.Paths {
		if !strings.Contains(p, "/") {
			for _, el := range els {
				if ok, _ := path.Match(p, el); ok {
					return true
				}
			}
			continue
		}
		pels := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for n := 1; n <= len(els); n++ {
			if matchElems(pels, els[:n]) {
				return true
			}
		}
	}
	return false
}

// matchElems matches path elements against glob elements, '**' spanning any
// number of elements.
func matchElems(pat, els []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(els); i++ {
				if matchElems(pat[1:], els[i:]) {
					return true
				}
			}
			return false
		}
		if len(els) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], els[0]); !ok {
			return false
		}
		pat, els = pat[1:], els[1:]
	}
	return len(els) == 0
}

// AllowsFingerprint reports whether findings with fingerprint fp are
// allowlisted. A nil Config allows nothing.
func (c *Config) AllowsFingerprint(fp string) bool {
	return c != nil && c.fps[strings.ToLower(fp)]
}

// Filter returns the findings that neither the paths nor the fingerprints of
// c allow; paths are matched against Finding.Path relative to root.
func (c *Config) Filter(findings []Finding, root string) []Finding {
	if c == nil {
		return findings
	}
	out := findings[:0:0]
	for _, f := range findings {
		if c.AllowsFingerprint(f.Fingerprint) || c.AllowsPath(relPath(root, f.Path)) {
			continue
		}
		out = append(out, f)
	}
	return out
}
