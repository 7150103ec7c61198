package scan

import "bytes"

// anchorSet finds every occurrence of a set of short literals (rule prefixes
// and keywords) in a buffer. Instead of one pass per literal, or a byte-at-a-
// time automaton, it picks for each literal its rarest byte in typical source
// text and runs one bytes.IndexByte pass (vectorised by the runtime) per
// distinct rare byte; at each occurrence of that byte it compares the few
// literals that chose it. Literals sharing a rare byte (the six latch prefixes
// all contain '_' at offset 4) cost one pass together.
type anchorSet struct {
	groups []anchorGroup
}

type anchorGroup struct {
	b    byte
	lits []anchorLit
}

type anchorLit struct {
	lit  string
	fold bool // ASCII case-insensitive
	off  int  // offset of the rare byte in lit
	id   int  // caller's identifier
}

// anchorSpec is a literal to look for, as given to newAnchorSet.
type anchorSpec struct {
	lit  string
	fold bool
}

// byteFreq is the frequency, per 100,000 bytes, of each printable ASCII byte
// in the Go distribution's source tree (127 MB of Go, assembly, C, text),
// measured once; it stands for "source-like text". Bytes absent from the
// table count as rare.
var byteFreq = [128]uint16{
	' ': 12349, '!': 133, '"': 777, '#': 47, '$': 120, '%': 92, '&': 120, '\'': 102,
	'(': 1040, ')': 1031, '*': 191, '+': 131, ',': 1991, '-': 241, '.': 1222, '/': 1036,
	'0': 2977, '1': 1283, '2': 964, '3': 706, '4': 729, '5': 474, '6': 665, '7': 399,
	'8': 587, '9': 431, ':': 848, ';': 133, '<': 116, '=': 763, '>': 98, '?': 27,
	'@': 84, 'A': 1052, 'B': 370, 'C': 509, 'D': 474, 'E': 686, 'F': 341, 'G': 203,
	'H': 355, 'I': 545, 'J': 76, 'K': 111, 'L': 422, 'M': 408, 'N': 347, 'O': 481,
	'P': 450, 'Q': 155, 'R': 583, 'S': 701, 'T': 638, 'U': 229, 'V': 347, 'W': 142,
	'X': 350, 'Y': 126, 'Z': 80, '[': 235, '\\': 455, ']': 233, '^': 27, '_': 715,
	'`': 74, 'a': 2593, 'b': 728, 'c': 1609, 'd': 1396, 'e': 4260, 'f': 1489, 'g': 880,
	'h': 807, 'i': 2433, 'j': 82, 'k': 378, 'l': 1594, 'm': 938, 'n': 2701, 'o': 2220,
	'p': 1105, 'q': 89, 'r': 2821, 's': 2293, 't': 3532, 'u': 1311, 'v': 558, 'w': 353,
	'x': 1799, 'y': 588, 'z': 126, '{': 555, '|': 139, '}': 555, '~': 20,
	'\n': 3000, '\t': 3000,
}

func freq(c byte) int {
	if c >= 128 {
		return 1
	}
	if f := byteFreq[c]; f > 0 {
		return int(f)
	}
	return 1
}

func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// cost is the expected number of IndexByte stops per 100,000 bytes when
// anchoring on c (both cases of a letter for a case-insensitive literal).
func cost(c byte, fold bool) int {
	if fold && isLetter(c) {
		return freq(c|0x20) + freq(c&^0x20)
	}
	return freq(c)
}

// newAnchorSet builds a matcher for specs; the id reported for a match is the
// index of its spec. Empty literals are ignored.
func newAnchorSet(specs []anchorSpec) *anchorSet {
	type choice struct {
		off  int
		cost int
	}
	best := make([]choice, len(specs))
	for i, s := range specs {
		best[i] = choice{off: -1}
		for j := 0; j < len(s.lit); j++ {
			if c := cost(s.lit[j], s.fold); best[i].off < 0 || c < best[i].cost {
				best[i] = choice{j, c}
			}
		}
	}
	// Second round: a literal moves to a byte that other literals already
	// anchor on if that costs at most twice its own best, saving a pass.
	groupBytes := func(c byte, fold bool) []byte {
		if fold && isLetter(c) {
			return []byte{c | 0x20, c &^ 0x20}
		}
		return []byte{c}
	}
	count := map[byte]int{}
	for i, s := range specs {
		if best[i].off >= 0 {
			for _, b := range groupBytes(s.lit[best[i].off], s.fold) {
				count[b]++
			}
		}
	}
	for i, s := range specs {
		if best[i].off < 0 {
			continue
		}
		own := groupBytes(s.lit[best[i].off], s.fold)
		for _, b := range own {
			count[b]--
		}
		move := best[i]
		for j := 0; j < len(s.lit); j++ {
			c := cost(s.lit[j], s.fold)
			if c > 2*best[i].cost || (move != best[i] && c >= move.cost) {
				continue
			}
			shared := true
			for _, b := range groupBytes(s.lit[j], s.fold) {
				if count[b] == 0 {
					shared = false
				}
			}
			if shared {
				move = choice{j, c}
			}
		}
		best[i] = move
		for _, b := range groupBytes(s.lit[best[i].off], s.fold) {
			count[b]++
		}
	}
	a := &anchorSet{}
	add := func(b byte, l anchorLit) {
		for gi := range a.groups {
			if a.groups[gi].b == b {
				a.groups[gi].lits = append(a.groups[gi].lits, l)
				return
			}
		}
		a.groups = append(a.groups, anchorGroup{b: b, lits: []anchorLit{l}})
	}
	for i, s := range specs {
		if best[i].off < 0 {
			continue
		}
		l := anchorLit{lit: s.lit, fold: s.fold, off: best[i].off, id: i}
		c := s.lit[l.off]
		if s.fold && isLetter(c) {
			add(c|0x20, l)
			add(c&^0x20, l)
		} else {
			add(c, l)
		}
	}
	return a
}

// find calls fn for every occurrence of every literal in data, with the
// literal's id and the offset at which it starts. Occurrences come grouped by
// rare byte, not in offset order.
func (a *anchorSet) find(data []byte, fn func(id, start int)) {
	for gi := range a.groups {
		g := &a.groups[gi]
		i := 0
		for i < len(data) {
			j := bytes.IndexByte(data[i:], g.b)
			if j < 0 {
				break
			}
			p := i + j
			for li := range g.lits {
				l := &g.lits[li]
				s := p - l.off
				if s < 0 || s+len(l.lit) > len(data) {
					continue
				}
				if l.fold {
					if equalFold(data[s:s+len(l.lit)], l.lit) {
						fn(l.id, s)
					}
				} else if string(data[s:s+len(l.lit)]) == l.lit {
					fn(l.id, s)
				}
			}
			i = p + 1
		}
	}
}

// equalFold reports whether b equals s under ASCII case folding; s must be
// lower-case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c |= 0x20
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
