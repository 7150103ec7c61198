package leaks

import (
	"bytes"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/latchhq/latch/scan"
	"github.com/latchhq/latch/token"
)

func TestMarkerReader(t *testing.T) {
	in := strings.Repeat("x", 100) + scan.AllowMarker + "latch:allo" + strings.Repeat("y", 70000) + scan.AllowMarker + "latch:al"
	want := strings.ReplaceAll(in, scan.AllowMarker, strings.ToUpper(scan.AllowMarker))
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
	} {
		got, err := io.ReadAll(&markerReader{r: r()})
		if err != nil || string(got) != want {
			t.Errorf("%s: err %v, output differs (%d bytes, want %d)", name, err, len(got), len(want))
		}
	}
	// Errors come through once the data before them is read.
	got, err := io.ReadAll(&markerReader{r: iotest.TimeoutReader(strings.NewReader(in))})
	if err != iotest.ErrTimeout || !strings.HasPrefix(want, string(got)) {
		t.Errorf("error: %v after %d bytes", err, len(got))
	}
	if !bytes.Equal(neutralize([]byte(in)), []byte(want)) {
		t.Error("neutralize differs from markerReader")
	}
}

// A live token in a blob larger than wholeBlob is found through the
// streaming path, markers neutralized, lines counted.
func TestStreamedScanFindsToken(t *testing.T) {
	s := New(Config{})
	tok := "latp_" + strings.Repeat("A", 32)
	tok += tokenChecksum(tok)
	data := strings.Repeat("line\n", 5<<20/5) + "k=" + tok + " # " + scan.AllowMarker + "\n"
	fs, err := s.scanner.ScanReader(&markerReader{r: strings.NewReader(data)}, "big")
	if err != nil || len(fs) != 1 || fs[0].Line != 5<<20/5+1 {
		t.Fatalf("findings %+v, err %v", fs, err)
	}
}

func TestAllowedIDs(t *testing.T) {
	got := allowedIDs([]string{"ci.skip", "latch-allow-secret=1", "latch-allow-secret=2, 3,", "latch-allow-secretX=4", "latch-allow-secret="})
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"1", "2", "3"}) {
		t.Errorf("allowed %v", keys)
	}
}

func tokenChecksum(body string) string {
	return token.EncodeChecksum(token.Checksum([]byte(body)))
}
