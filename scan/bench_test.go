package scan

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/scan/scantest"
	"github.com/latchhq/latch/token"
)

var benchData struct {
	once sync.Once
	buf  []byte
	n    int // planted credentials
}

// benchBuffer returns about 16 MB of source text (the Go distribution's own
// sources when present, else generated Go-like lines) with a credential of
// every kind planted every 64 KB.
func benchBuffer(b *testing.B) ([]byte, int) {
	benchData.once.Do(func() {
		const size = 16 << 20
		var src bytes.Buffer
		root := filepath.Join(goRoot(), "src")
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || src.Len() >= size {
				return filepath.SkipAll
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") {
				if data, err := os.ReadFile(p); err == nil && !bytes.Contains(data, []byte("PRIVATE KEY")) {
					src.Write(data)
				}
			}
			return nil
		})
		g := scantest.New(5)
		for src.Len() < size {
			src.WriteString("\tif err := x.Flush(ctx, " + g.Alnum(12) + "); err != nil {\n\t\treturn fmt.Errorf(\"flush: %w\", err)\n\t}\n")
		}
		text := src.Bytes()[:size]
		var out bytes.Buffer
		n := 0
		for i := 0; i < len(text); i += 64 << 10 {
			end := min(len(text), i+64<<10)
			if j := bytes.LastIndexByte(text[i:end], '\n'); j >= 0 && end < len(text) {
				end = i + j + 1
			}
			out.Write(text[i:end])
			i = end - 64<<10
			switch n % 6 {
			case 0:
				out.WriteString("const tok = \"" + g.Latch(token.Kinds[n%len(token.Kinds)]) + "\"\n")
			case 1:
				out.WriteString("// https://u:" + g.AppPassword() + "@bitbucket.org/x/y\n")
			case 2:
				out.WriteString("var dc = \"" + g.BBDC() + "\"\n")
			case 3:
				out.WriteString("JIRA=" + g.AtlassianAPIToken() + "\n")
			case 4:
				k, s := g.OAuthConsumer()
				out.WriteString("// bitbucket consumer\nkey: " + k + "\nsecret: " + s + "\n")
			case 5:
				out.WriteString("BB=" + g.CloudAccessToken() + "\n")
			}
			n++
		}
		benchData.buf, benchData.n = out.Bytes(), n
	})
	return benchData.buf, benchData.n
}

func BenchmarkScan(b *testing.B) {
	data, n := benchBuffer(b)
	s := NewScanner()
	if got := len(s.Scan(data, "bench")); got != n {
		b.Fatalf("found %d of %d planted", got, n)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		s.Scan(data, "bench")
	}
}

// BenchmarkScanParallel scans 1 MB pieces on every core, as ScanPaths does
// with files.
func BenchmarkScanParallel(b *testing.B) {
	data, _ := benchBuffer(b)
	s := NewScanner()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			off := (i << 20) % (len(data) - 1<<20)
			s.Scan(data[off:off+1<<20], "bench")
			i++
		}
	})
}

func BenchmarkScanLatchRules(b *testing.B) {
	data, _ := benchBuffer(b)
	s := NewScanner(LatchRules()...)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		s.Scan(data, "bench")
	}
}

// BenchmarkIndexPerPrefix is the naive baseline: one bytes.Index pass per
// literal prefix, no validation.
func BenchmarkIndexPerPrefix(b *testing.B) {
	data, _ := benchBuffer(b)
	var prefixes [][]byte
	for _, r := range DefaultRules() {
		if r.Prefix != "" {
			prefixes = append(prefixes, []byte(r.Prefix))
		}
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for _, p := range prefixes {
			for i := 0; ; {
				j := bytes.Index(data[i:], p)
				if j < 0 {
					break
				}
				i += j + 1
			}
		}
	}
}

// goRoot is the Go installation's root, as the go command reports it.
func goRoot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
