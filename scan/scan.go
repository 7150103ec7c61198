// Package scan finds leaked credentials in text: latch's own tokens, whose
// prefix and CRC32 checksum make every match certain, and the Bitbucket and
// Atlassian credentials and private SSH keys that latch users hold beside
// them.
//
// The engine never runs a regular expression over a whole input. It looks for
// a few literal anchors first (rule prefixes and keywords, each found through
// one rare byte with bytes.IndexByte), examines only the text around each
// anchor, and validates every candidate locally (checksum, decoded shape, key
// parse) before it becomes a Finding.
//
// A Scanner is immutable and safe for concurrent use: a server can scan the
// new blobs of a push from several goroutines with one Scanner, for instance
// scan.NewScanner(scan.LatchRules()...).Scan(blob, path). ScanPaths and
// ScanHistory drive a Scanner over files and over a Git repository's history
// on every core.
package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchhq/latch/token"
)

// AllowMarker on a line silences every finding on that line.
const AllowMarker = "latch:allow"

// Finding is one credential found in the input.
type Finding struct {
	// Rule is the rule that found it.
	Rule *Rule
	// Secret is the credential exactly as it appears in the input; print
	// Redacted() unless the user asked for secrets. For a paired rule it is
	// the secret part.
	Secret string
	// Key is the non-secret identifier found with a paired secret (the
	// OAuth consumer key).
	Key string
	// Kind is the latch credential kind, for latch rules.
	Kind token.Kind
	// PublicKey is the SHA256 fingerprint of a private key's public half,
	// when it can be derived.
	PublicKey string
	// Encrypted is set for passphrase-protected private keys.
	Encrypted bool
	// Path names the scanned file or blob ("-" for standard input).
	Path string
	// Offset is the byte offset of Secret in the scanned content.
	Offset int64
	// Line and Column (1-based, in Unicode code points) locate the start of
	// Secret; EndLine and EndColumn its end (EndColumn is one past its last
	// character).
	Line, Column       int
	EndLine, EndColumn int
	// Fingerprint identifies the finding across scans and allowlists: a
	// hash of the rule ID and the secret (see FingerprintOf).
	Fingerprint string
	// Origin tells where a finding of a history scan comes from.
	Origin *Origin
	// Status is the validity reported by a latch server (active, revoked,
	// expired, unknown), when checked.
	Status string
	// CredentialID is the server's identifier of the credential, when
	// checked.
	CredentialID string
}

// Redacted returns the form of the secret that may be shown.
func (f *Finding) Redacted() string { return f.Rule.Redact(f.Secret) }

// Origin is the commit that first introduced a finding's blob.
type Origin struct {
	Commit string
	Author string
	Email  string
	Date   time.Time
	// Blob is the object ID of the blob the secret was found in.
	Blob string
	// InHEAD reports whether HEAD's tree still holds a blob in which the
	// secret was found (at this path or, if the file moved, another).
	InHEAD bool
	// seq orders blobs by first introduction.
	seq int64
}

// FingerprintOf returns the fingerprint of a secret found by the rule with ID
// ruleID: the first 16 bytes of SHA-256(ruleID, NUL, canonical) in hex, where
// canonical is the secret itself except for paired rules (key:secret) and
// private keys (the public key fingerprint, or the base64 body).
func FingerprintOf(ruleID, canonical string) string {
	h := sha256.New()
	io.WriteString(h, ruleID)
	h.Write([]byte{0})
	io.WriteString(h, canonical)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Scanner applies a set of rules to content.
type Scanner struct {
	rules       []*Rule
	anchors     *anchorSet
	targets     [][]anchorTarget // by anchor id
	regions     []regionDetector // by region index
	regionRules []*Rule          // by region index
	context     []int            // lines of context by region index
	noMarkers   bool             // report findings on AllowMarker lines too
}

type anchorTarget struct {
	rule   *Rule
	prefix prefixDetector // nil for a keyword
	region int            // index into Scanner.regions for a keyword
}

// NewScanner returns a Scanner applying rules, or DefaultRules() when none
// are given.
func NewScanner(rules ...*Rule) *Scanner {
	if len(rules) == 0 {
		rules = DefaultRules()
	}
	s := &Scanner{rules: rules}
	var specs []anchorSpec
	ids := map[anchorSpec]int{}
	add := func(sp anchorSpec, t anchorTarget) {
		id, ok := ids[sp]
		if !ok {
			id = len(specs)
			ids[sp] = id
			specs = append(specs, sp)
			s.targets = append(s.targets, nil)
		}
		s.targets[id] = append(s.targets[id], t)
	}
	for _, r := range rules {
		switch d := r.det.(type) {
		case prefixDetector:
			for _, p := range d.prefixes() {
				add(anchorSpec{lit: p}, anchorTarget{rule: r, prefix: d})
			}
		case regionDetector:
			ri := len(s.regions)
			s.regions = append(s.regions, d)
			s.regionRules = append(s.regionRules, r)
			s.context = append(s.context, d.context())
			for _, k := range d.keywords() {
				add(anchorSpec{lit: k, fold: true}, anchorTarget{rule: r, region: ri})
			}
		}
	}
	s.anchors = newAnchorSet(specs)
	return s
}

// IgnoringAllowMarkers returns a Scanner like s that reports findings on
// lines holding AllowMarker too, as push protection must: a marker in the
// pushed content cannot be trusted to silence it.
func (s *Scanner) IgnoringAllowMarkers() *Scanner {
	c := *s
	c.noMarkers = true
	return &c
}

// Rules returns the scanner's rules.
func (s *Scanner) Rules() []*Rule { return append([]*Rule(nil), s.rules...) }

// IsBinary reports whether data looks binary the way Git decides it: a NUL
// byte in its first 8000 bytes.
func IsBinary(data []byte) bool {
	return bytes.IndexByte(data[:min(len(data), 8000)], 0) >= 0
}

// Scan returns the findings in data, read from path, in order of position.
// Findings on a line holding AllowMarker are left out. Scan does not skip
// binary content; callers decide with IsBinary.
func (s *Scanner) Scan(data []byte, path string) []Finding {
	ms := s.find(data, 0, len(data))
	return s.finalize(data, ms, position{line: 1, col: 1}, 0, path)
}

// ScanReader is Scan over a stream, read in chunks with overlapping margins
// so that memory stays bounded; a credential longer than the margin (64 KB)
// that straddles two chunks may be missed.
func (s *Scanner) ScanReader(r io.Reader, path string) ([]Finding, error) {
	return s.scanReader(r, path, 4<<20, 64<<10)
}

func (s *Scanner) scanReader(r io.Reader, path string, chunk, margin int) ([]Finding, error) {
	buf := make([]byte, 0, chunk+2*margin)
	pos := position{line: 1, col: 1}
	var base int64 // offset of buf[0] in the stream
	ownLo := 0
	var out []Finding
	for {
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return out, fmt.Errorf("scan: reading %s: %w", path, err)
		}
		ownHi := len(buf) - margin
		if eof {
			ownHi = len(buf)
		}
		if ownHi > ownLo {
			ms := s.find(buf, ownLo, ownHi)
			out = append(out, s.finalize(buf, ms, pos, base, path)...)
		}
		if eof {
			return out, nil
		}
		keep := ownHi - margin
		pos = pos.advance(buf[:keep])
		base += int64(keep)
		copy(buf, buf[keep:])
		buf = buf[:len(buf)-keep]
		ownLo = margin
	}
}

type window struct{ lo, hi int }

// find returns the validated matches in data that start in [lo, hi), sorted
// by position, without duplicates.
func (s *Scanner) find(data []byte, lo, hi int) []match {
	var ms []match
	var hits [][]int // keyword positions by region
	s.anchors.find(data, func(id, start int) {
		for _, t := range s.targets[id] {
			if t.prefix != nil {
				if start < lo || start >= hi {
					continue
				}
				if m, ok := t.prefix.at(data, start); ok {
					m.rule = t.rule
					ms = append(ms, m)
				}
				continue
			}
			if hits == nil {
				hits = make([][]int, len(s.regions))
			}
			hits[t.region] = append(hits[t.region], start)
		}
	})
	for ri, hs := range hits {
		if len(hs) == 0 {
			continue
		}
		rule := s.regionRules[ri]
		flush := func(w window) {
			s.regions[ri].region(data, w.lo, w.hi, func(m match) {
				if m.start >= lo && m.start < hi {
					m.rule = rule
					ms = append(ms, m)
				}
			})
		}
		slices.Sort(hs)
		var cur window
		have := false
		last := -1
		for _, p := range hs {
			// A keyword close after the last one on the same line has the
			// same window (exactly, for lines shorter than windowSkip).
			if last >= 0 && p-last < windowSkip && bytes.IndexByte(data[last:p], '\n') < 0 {
				continue
			}
			last = p
			w := lineWindow(data, p, s.context[ri])
			switch {
			case !have:
				cur, have = w, true
			case w.lo <= cur.hi:
				cur.hi = max(cur.hi, w.hi)
			default:
				flush(cur)
				cur = w
			}
		}
		flush(cur)
	}
	slices.SortFunc(ms, func(a, b match) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return strings.Compare(a.rule.ID, b.rule.ID)
	})
	return slices.CompactFunc(ms, func(a, b match) bool { return a.start == b.start && a.rule == b.rule })
}

// position is a line and column (in code points), both 1-based.
type position struct{ line, col int }

func (p position) advance(b []byte) position {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return position{line: p.line + bytes.Count(b, []byte{'\n'}), col: 1 + utf8.RuneCount(b[i+1:])}
	}
	return position{line: p.line, col: p.col + utf8.RuneCount(b)}
}

// finalize turns sorted matches into findings; data[0] is at position pos and
// offset base of the input.
func (s *Scanner) finalize(data []byte, ms []match, pos position, base int64, path string) []Finding {
	var out []Finding
	last := 0
	marked := !s.noMarkers && len(ms) > 0 && bytes.Contains(data, []byte(AllowMarker))
	for _, m := range ms {
		if marked && (allowed(data, m.start, m.end) || (m.keyEnd > m.keyStart && allowed(data, m.keyStart, m.keyEnd))) {
			continue
		}
		pos = pos.advance(data[last:m.start])
		last = m.start
		end := pos.advance(data[m.start:m.end])
		secret := string(data[m.start:m.end])
		canonical := m.canonical
		if canonical == "" {
			canonical = secret
		}
		f := Finding{
			Rule:        m.rule,
			Secret:      secret,
			Kind:        m.kind,
			PublicKey:   m.publicKey,
			Encrypted:   m.encrypted,
			Path:        path,
			Offset:      base + int64(m.start),
			Line:        pos.line,
			Column:      pos.col,
			EndLine:     end.line,
			EndColumn:   end.col,
			Fingerprint: FingerprintOf(m.rule.ID, canonical),
		}
		if m.keyEnd > m.keyStart {
			f.Key = string(data[m.keyStart:m.keyEnd])
		}
		out = append(out, f)
	}
	return out
}

// maxLine bounds how far line boundaries are searched for, so that a huge
// minified line costs linear time.
const maxLine = 4096

// lineStart returns the start of the line holding data[i] (at most maxLine
// bytes back).
func lineStart(data []byte, i int) int {
	lo := max(0, i-maxLine)
	if j := bytes.LastIndexByte(data[lo:i], '\n'); j >= 0 {
		return lo + j + 1
	}
	return lo
}

// lineEnd returns the end (the newline or the end of data) of the line holding
// data[i] (at most maxLine bytes on).
func lineEnd(data []byte, i int) int {
	hi := min(len(data), i+maxLine)
	if j := bytes.IndexByte(data[i:hi], '\n'); j >= 0 {
		return i + j
	}
	return hi
}

// windowLine bounds the part of a line that counts for keyword proximity:
// the window around a keyword extends at most (n+1)*windowLine bytes either
// way, so that keywords on a huge minified line cost bounded time.
const windowLine = 1024

// windowSkip is the distance within which a keyword on the same line as the
// previous one reuses its window.
const windowSkip = 256

// lineWindow returns the lines from n lines before the one holding data[p]
// to n lines after it, as the range [lo, hi) (hi at the last line's newline).
func lineWindow(data []byte, p, n int) window {
	span := (n + 1) * windowLine
	floor, ceil := max(0, p-span), min(len(data), p+span)
	w := window{lo: floor, hi: ceil}
	pos := p
	for k := 0; k <= n; k++ {
		j := bytes.LastIndexByte(data[floor:pos], '\n')
		if j < 0 {
			break
		}
		pos = floor + j
		if k == n {
			w.lo = pos + 1
		}
	}
	pos = p
	for k := 0; k <= n; k++ {
		j := bytes.IndexByte(data[pos:ceil], '\n')
		if j < 0 {
			break
		}
		pos += j
		if k == n {
			w.hi = pos
		}
		pos++
	}
	return w
}

// lineTable records the newlines of part of data, for many line lookups in
// logarithmic time.
type lineTable struct {
	nls    []int // positions of '\n' in [lo, hi)
	lo, hi int
	n      int // len(data)
}

func newLineTable(data []byte, lo, hi int) lineTable {
	t := lineTable{lo: lo, hi: hi, n: len(data)}
	for i := lo; i < hi; {
		j := bytes.IndexByte(data[i:hi], '\n')
		if j < 0 {
			break
		}
		t.nls = append(t.nls, i+j)
		i += j + 1
	}
	return t
}

// line returns the number of newlines in [lo, i).
func (t lineTable) line(i int) int {
	k, _ := slices.BinarySearch(t.nls, i)
	return k
}

// bounds returns what lineStart and lineEnd return for i, for i at least
// maxLine inside [lo, hi) (or at the ends of data).
func (t lineTable) bounds(i int) (start, end int) {
	k, _ := slices.BinarySearch(t.nls, i)
	start = max(0, i-maxLine)
	if k > 0 && t.nls[k-1] >= start {
		start = t.nls[k-1] + 1
	}
	end = min(t.n, i+maxLine)
	if k < len(t.nls) && t.nls[k] < end {
		end = t.nls[k]
	}
	return start, end
}

// allowed reports whether a line spanned by data[start:end] holds AllowMarker.
func allowed(data []byte, start, end int) bool {
	lo, hi := lineStart(data, start), lineEnd(data, max(start, end-1))
	return bytes.Contains(data[lo:hi], []byte(AllowMarker))
}
