package scan

import (
	"bytes"
	"slices"
)

// Bitbucket Cloud OAuth consumers have an 18-character key and a
// 32-character secret, both alphanumeric, with no prefix and no checksum.
const (
	oauthKeyLen    = 18
	oauthSecretLen = 32
	// oauthPairLines is how many lines apart key and secret may be.
	oauthPairLines = 3
	// oauthPairBytes is how many bytes apart they may be.
	oauthPairBytes = 1024
)

var (
	oauthKeyLabels    = []string{"key", "client", "consumer", "id"}
	oauthSecretLabels = []string{"secret", "pass"}
)

// oauthPairDetector finds a consumer key and secret together near the word
// Bitbucket. Each part must be a whole word (no alphanumeric, '_' or '-' on
// either side), look random (see looksRandom) and sit on a line that labels
// it, unless the two are written together as key:secret.
type oauthPairDetector struct{}

func (oauthPairDetector) keywords() []string { return []string{"bitbucket"} }

func (oauthPairDetector) context() int { return 5 }

type oauthCand struct {
	start, end, line int
	labelled         bool
}

func (oauthPairDetector) region(data []byte, lo, hi int, emit func(match)) {
	var keys, secrets []oauthCand
	i := lo
	for i > 0 && classWord[data[i-1]] {
		i--
	}
	// Label words are located once for the whole region, so that a long
	// region with many candidates stays linear.
	llo, lhi := max(0, i-maxLine), min(len(data), hi+maxLine)
	keyLabels := indexFoldAll(data[llo:lhi], oauthKeyLabels, llo)
	secretLabels := indexFoldAll(data[llo:lhi], oauthSecretLabels, llo)
	lines := newLineTable(data, llo, lhi)
	for i < hi {
		if !classWord[data[i]] {
			i++
			continue
		}
		s := i
		for i < len(data) && classWord[data[i]] {
			i++
		}
		n := i - s
		if n != oauthKeyLen && n != oauthSecretLen {
			continue
		}
		w := data[s:i]
		if !allIn(w, &classAlnum) || !looksRandom(w) {
			continue
		}
		ls, le := lines.bounds(s)
		c := oauthCand{start: s, end: i, line: lines.line(s)}
		if n == oauthKeyLen {
			c.labelled = hasLabel(keyLabels, ls, le)
			keys = append(keys, c)
		} else {
			c.labelled = hasLabel(secretLabels, ls, le)
			secrets = append(secrets, c)
		}
	}
	if len(keys) == 0 || len(secrets) == 0 {
		return
	}
	// key:secret written together labels both.
	keyEnding := make(map[int]int, len(keys))
	for ki, k := range keys {
		keyEnding[k.end] = ki
	}
	for si := range secrets {
		sc := &secrets[si]
		if ki, ok := keyEnding[sc.start-1]; ok && data[sc.start-1] == ':' {
			keys[ki].labelled, sc.labelled = true, true
		}
	}
	// Keys are in order: look only at those within oauthPairBytes.
	for _, sc := range secrets {
		if !sc.labelled {
			continue
		}
		best := -1
		first, _ := slices.BinarySearchFunc(keys, sc.start-oauthPairBytes, func(k oauthCand, p int) int { return k.start - p })
		for ki := first; ki < len(keys) && keys[ki].start <= sc.start+oauthPairBytes; ki++ {
			k := keys[ki]
			if !k.labelled || abs(k.line-sc.line) > oauthPairLines {
				continue
			}
			if best < 0 || abs(k.line-sc.line) < abs(keys[best].line-sc.line) ||
				abs(k.line-sc.line) == abs(keys[best].line-sc.line) && abs(k.start-sc.start) < abs(keys[best].start-sc.start) {
				best = ki
			}
		}
		if best < 0 {
			continue
		}
		k := keys[best]
		emit(match{
			start: sc.start, end: sc.end, keyStart: k.start, keyEnd: k.end,
			canonical: string(data[k.start:k.end]) + ":" + string(data[sc.start:sc.end]),
		})
	}
}

// indexFoldAll returns the sorted offsets (plus base) of every occurrence of
// any of words (lower-case) in data, under ASCII case folding.
func indexFoldAll(data []byte, words []string, base int) []int {
	var at []int
	for _, w := range words {
		for _, c := range []byte{w[0], w[0] &^ 0x20} {
			for i := 0; i < len(data); {
				j := bytes.IndexByte(data[i:], c)
				if j < 0 {
					break
				}
				p := i + j
				if p+len(w) <= len(data) && equalFold(data[p:p+len(w)], w) {
					at = append(at, base+p)
				}
				i = p + 1
			}
		}
	}
	slices.Sort(at)
	return at
}

// hasLabel reports whether a label starts within [lo, hi).
func hasLabel(at []int, lo, hi int) bool {
	i, _ := slices.BinarySearch(at, lo)
	return i < len(at) && at[i] < hi
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func (oauthPairDetector) validate(secret string) bool {
	return len(secret) == oauthSecretLen && validOAuthPart([]byte(secret))
}

func (oauthPairDetector) redact(secret string) string { return redactTail(secret) }

// validOAuthPart reports whether b could be a consumer key or secret.
func validOAuthPart(b []byte) bool { return allIn(b, &classAlnum) && looksRandom(b) }

// looksRandom tells random alphanumerics from identifiers and hashes: it
// wants both upper and lower case, not only hexadecimal digits, and a change
// of class (upper, lower, digit) between at least a third of adjacent
// characters. Random strings change class 62% of the time: a random 18-char
// key fails with probability about 0.6%, a 32-char secret about 0.1%, while
// camel-case identifiers ("BitbucketClientKey": 5 changes) and hashes fail.
func looksRandom(b []byte) bool {
	var upper, lower, nonHex bool
	changes := 0
	prev := -1
	for _, c := range b {
		cl := 0
		switch {
		case c >= 'A' && c <= 'Z':
			upper, cl = true, 1
			nonHex = nonHex || c > 'F'
		case c >= 'a' && c <= 'z':
			lower, cl = true, 2
			nonHex = nonHex || c > 'f'
		}
		if prev >= 0 && cl != prev {
			changes++
		}
		prev = cl
	}
	return upper && lower && nonHex && changes*3 >= len(b)
}
