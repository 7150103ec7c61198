package scan

import (
	"encoding/base64"
	"hash/crc32"

	"github.com/latchhq/latch/token"
)

// Character classes, indexed by byte.
var (
	classAlnum     [256]bool // A-Z a-z 0-9
	classBase64    [256]bool // standard base64 alphabet, no padding
	classBase64Pad [256]bool // standard base64 alphabet and '='
	classWord      [256]bool // alphanumerics, '_' and '-'
	classAtlassian [256]bool // base64url alphabet and '='
	classHexUpper  [256]bool // 0-9 A-F
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
		classAlnum[c] = alnum
		classBase64[c] = alnum || b == '+' || b == '/'
		classBase64Pad[c] = classBase64[c] || b == '='
		classWord[c] = alnum || b == '_' || b == '-'
		classAtlassian[c] = alnum || b == '_' || b == '-' || b == '='
		classHexUpper[c] = b >= '0' && b <= '9' || b >= 'A' && b <= 'F'
	}
}

func allIn(b []byte, class *[256]bool) bool {
	for _, c := range b {
		if !class[c] {
			return false
		}
	}
	return true
}

// parseHexUpper parses 8 upper-case hex digits.
func parseHexUpper(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint32(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// latchDetector finds latch tokens of one kind.
//
// Boundaries: the token may follow any byte (the checksum, not a word
// boundary, is what makes a match certain, and tokens are often glued to
// `\n` escapes or URL encodings), but the byte after it must not be base62,
// since a longer base62 run is not a token.
type latchDetector struct{ kind token.Kind }

func (d latchDetector) prefixes() []string { return []string{string(d.kind) + "_"} }

func (d latchDetector) at(data []byte, start int) (match, bool) {
	end := start + token.Len
	if end > len(data) || (end < len(data) && token.IsBase62(data[end])) {
		return match{}, false
	}
	if !allIn(data[start+token.PrefixLen+1:end], &classAlnum) {
		return match{}, false
	}
	if !d.validate(string(data[start:end])) {
		return match{}, false
	}
	return match{start: start, end: end, kind: d.kind}, true
}

func (d latchDetector) validate(secret string) bool {
	k, err := token.Parse(secret)
	return err == nil && k == d.kind
}

func (d latchDetector) redact(secret string) string { return token.Redact(secret) }

// bbdcBodyLen is the length of a Data Center token body: base64 of 12 digits,
// ':' and 20 bytes.
const bbdcBodyLen = 44

// validBBDCBody reports whether body is the base64 encoding of
// `<12 digits>:<20 bytes>`.
func validBBDCBody(body []byte) bool {
	if len(body) != bbdcBodyLen {
		return false
	}
	var dec [33]byte
	n, err := base64.StdEncoding.Decode(dec[:], body)
	if err != nil || n != len(dec) {
		return false
	}
	for _, c := range dec[:12] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return dec[12] == ':'
}

// bbdcDetector finds `BBDC-` tokens. The byte after the body must be neither
// base64 nor '=' (a longer base64 string is not a token).
type bbdcDetector struct{}

func (bbdcDetector) prefixes() []string { return []string{"BBDC-"} }

func (d bbdcDetector) at(data []byte, start int) (match, bool) {
	end := start + 5 + bbdcBodyLen
	if end > len(data) {
		return match{}, false
	}
	if end < len(data) && (classBase64[data[end]] || data[end] == '=') {
		return match{}, false
	}
	if !validBBDCBody(data[start+5 : end]) {
		return match{}, false
	}
	return match{start: start, end: end}, true
}

func (bbdcDetector) validate(secret string) bool {
	return len(secret) == 5+bbdcBodyLen && secret[:5] == "BBDC-" && validBBDCBody([]byte(secret[5:]))
}

func (bbdcDetector) redact(secret string) string { return redactPrefixed(secret, "BBDC-") }

// bbdcUnprefixedDetector finds older Data Center tokens, with no prefix, on
// the lines around a Bitbucket keyword: a base64 run of exactly 44 characters
// not followed by '=' and not preceded by `BBDC-` (the prefixed rule reports
// those).
type bbdcUnprefixedDetector struct{}

func (bbdcUnprefixedDetector) keywords() []string { return []string{"bitbucket", "bbdc", "stash"} }

func (bbdcUnprefixedDetector) context() int { return 1 }

func (bbdcUnprefixedDetector) region(data []byte, lo, hi int, emit func(match)) {
	i := lo
	// A run that starts before lo belongs to it: back up to its start.
	for i > 0 && classBase64[data[i-1]] {
		i--
	}
	for i < hi {
		if !classBase64[data[i]] {
			i++
			continue
		}
		s := i
		for i < len(data) && classBase64[data[i]] {
			i++
		}
		if i-s != bbdcBodyLen || (i < len(data) && data[i] == '=') {
			continue
		}
		if s >= 5 && string(data[s-5:s]) == "BBDC-" {
			continue
		}
		if validBBDCBody(data[s:i]) {
			emit(match{start: s, end: i})
		}
	}
}

func (bbdcUnprefixedDetector) validate(secret string) bool { return validBBDCBody([]byte(secret)) }

func (bbdcUnprefixedDetector) redact(secret string) string { return redactTail(secret) }

// atbbLen is the length of a Bitbucket app password.
const atbbLen = 4 + 24 + 8

// atbbDetector finds Bitbucket app passwords. The byte after must not be
// alphanumeric.
type atbbDetector struct{}

func (atbbDetector) prefixes() []string { return []string{"ATBB"} }

func (d atbbDetector) at(data []byte, start int) (match, bool) {
	end := start + atbbLen
	if end > len(data) || (end < len(data) && classAlnum[data[end]]) {
		return match{}, false
	}
	if !validATBB(data[start:end]) {
		return match{}, false
	}
	return match{start: start, end: end}, true
}

func validATBB(b []byte) bool {
	if len(b) != atbbLen || string(b[:4]) != "ATBB" || !allIn(b[4:28], &classAlnum) {
		return false
	}
	sum, ok := parseHexUpper(b[28:])
	return ok && sum == crc32.ChecksumIEEE(b[:28])
}

func (atbbDetector) validate(secret string) bool { return validATBB([]byte(secret)) }

func (atbbDetector) redact(secret string) string { return redactPrefixed(secret, "ATBB") }

// Atlassian tokens are 192 characters in practice; the detector accepts a
// range around that so that a change of body length is still caught.
const (
	atlassianMinLen = 64
	atlassianMaxLen = 512
)

// atlassianDetector finds Atlassian API tokens (ATATT3) and Bitbucket Cloud
// access tokens (ATCTT3): the maximal run of base64url characters and '='
// from the prefix must end with '=' and 8 upper-case hex digits holding the
// CRC32 of everything before them, '=' included. Requiring the run to end
// there is the explicit "next character not in the alphabet" check (a `\b`
// would be wrong for an alphabet with '-' and '_').
type atlassianDetector struct{ prefix string }

func (d atlassianDetector) prefixes() []string { return []string{d.prefix} }

func (d atlassianDetector) at(data []byte, start int) (match, bool) {
	end := start
	for end < len(data) && end-start <= atlassianMaxLen && classAtlassian[data[end]] {
		end++
	}
	if !validAtlassian(data[start:end], d.prefix) {
		return match{}, false
	}
	return match{start: start, end: end}, true
}

func validAtlassian(b []byte, prefix string) bool {
	n := len(b)
	if n < atlassianMinLen || n > atlassianMaxLen || string(b[:len(prefix)]) != prefix ||
		!allIn(b, &classAtlassian) || b[n-9] != '=' {
		return false
	}
	sum, ok := parseHexUpper(b[n-8:])
	return ok && sum == crc32.ChecksumIEEE(b[:n-8])
}

func (d atlassianDetector) validate(secret string) bool {
	return validAtlassian([]byte(secret), d.prefix)
}

func (d atlassianDetector) redact(secret string) string { return redactPrefixed(secret, d.prefix) }
