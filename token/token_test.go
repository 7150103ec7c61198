package token

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	for _, k := range Kinds {
		tok, err := Generate(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != Len || !strings.HasPrefix(tok, string(k)+"_") {
			t.Fatalf("bad shape %q", tok)
		}
		got, err := Parse(tok)
		if err != nil || got != k {
			t.Fatalf("Parse(%q) = %q, %v", tok, got, err)
		}
		// Any single-character change must be caught.
		b := []byte(tok)
		b[10] = flip(b[10])
		if _, err := Parse(string(b)); err == nil {
			t.Fatalf("Parse accepted a corrupted token %q", b)
		}
	}
}

func flip(c byte) byte {
	if c == 'a' {
		return 'b'
	}
	return 'a'
}

func TestChecksumIsCRC32OfBody(t *testing.T) {
	body := "latp_" + strings.Repeat("A", RandomLen)
	sum := crc32.ChecksumIEEE([]byte(body))
	want := ""
	for v := sum; len(want) < ChecksumLen; v /= 62 {
		want = string(Alphabet[v%62]) + want
	}
	tok := body + want
	if k, err := Parse(tok); err != nil || k != Personal {
		t.Fatalf("Parse(%q) = %v, %v", tok, k, err)
	}
	if EncodeChecksum(sum) != want {
		t.Fatalf("EncodeChecksum = %s, want %s", EncodeChecksum(sum), want)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := Generate(Personal)
	for _, s := range []string{
		"", "latp_", good[:Len-1], good + "x", "LATP" + good[4:], "latp-" + good[5:],
		"zzzz" + good[4:], good[:20] + "!" + good[21:],
	} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestRedact(t *testing.T) {
	tok, _ := Generate(API)
	r := Redact(tok)
	if strings.Contains(r, tok[5:30]) || !strings.HasPrefix(r, "lata_") || !strings.HasSuffix(r, tok[Len-4:]) {
		t.Fatalf("Redact = %q", r)
	}
}

func FuzzParse(f *testing.F) {
	tok, _ := Generate(Personal)
	f.Add(tok)
	f.Add("latp_00000000000000000000000000000000000000")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Parse(s)
		if err != nil {
			return
		}
		if !k.Valid() || len(s) != Len {
			t.Fatalf("accepted %q as %q", s, k)
		}
		sum := crc32.ChecksumIEEE([]byte(s[:Len-ChecksumLen]))
		if EncodeChecksum(sum) != s[Len-ChecksumLen:] {
			t.Fatalf("accepted wrong checksum %q", s)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	tok, _ := Generate(Personal)
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
