package scan

import "bytes"

// Bitbucket Cloud OAuth consumers have an 18-character key and a
// 32-character secret, both alphanumeric, with no prefix and no checksum.
const (
	oauthKeyLen    = 18
	oauthSecretLen = 32
	// oauthPairLines is how many lines apart key and secret may be.
	oauthPairLines = 3
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
	line := 0
	i := lo
	for i > 0 && classWord[data[i-1]] {
		i--
	}
	last := lo // newlines before last are counted in line
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
		if s > last {
			line += bytes.Count(data[last:s], []byte{'\n'})
			last = s
		}
		ls, le := lineStart(data, s), lineEnd(data, s)
		c := oauthCand{start: s, end: i, line: line}
		if n == oauthKeyLen {
			c.labelled = containsFold(data[ls:le], oauthKeyLabels)
			keys = append(keys, c)
		} else {
			c.labelled = containsFold(data[ls:le], oauthSecretLabels)
			secrets = append(secrets, c)
		}
	}
	if len(keys) == 0 || len(secrets) == 0 {
		return
	}
	// key:secret written together labels both.
	for ki := range keys {
		for si := range secrets {
			if secrets[si].start == keys[ki].end+1 && data[keys[ki].end] == ':' {
				keys[ki].labelled, secrets[si].labelled = true, true
			}
		}
	}
	for _, sc := range secrets {
		if !sc.labelled {
			continue
		}
		best := -1
		for ki, kc := range keys {
			if !kc.labelled {
				continue
			}
			d := abs(kc.line - sc.line)
			if d <= oauthPairLines && (best < 0 || d < abs(keys[best].line-sc.line)) {
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

// containsFold reports whether line contains any of words (lower-case) under
// ASCII case folding.
func containsFold(line []byte, words []string) bool {
	for _, w := range words {
		for i := 0; i+len(w) <= len(line); i++ {
			if equalFold(line[i:i+len(w)], w) {
				return true
			}
		}
	}
	return false
}
