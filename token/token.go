// Package token defines the format of every latch credential secret:
//
//	{prefix}_{32 base62 random}{6 base62 checksum}
//
// The prefix names the kind of credential, the random part carries 190 bits of
// entropy, and the checksum is the CRC32 (IEEE) of everything before it written
// in base62 and left-padded with '0' to six characters. The checksum lets a
// scanner, or the server before any database query, tell a real latch token
// from random text without knowing any secret.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync"
)

// Kind is the prefix that names the kind of a credential.
type Kind string

// The kinds of latch credentials.
const (
	Personal      Kind = "latp" // personal HTTP access token
	Repository    Kind = "latr" // project or repository HTTP access token
	API           Kind = "lata" // scoped API token
	OAuthAccess   Kind = "lato" // OAuth access token
	OAuthRefresh  Kind = "latf" // OAuth refresh token
	OAuthConsumer Kind = "latc" // OAuth consumer secret
)

// Kinds lists every credential kind, in a stable order.
var Kinds = []Kind{Personal, Repository, API, OAuthAccess, OAuthRefresh, OAuthConsumer}

// Sizes of the parts of a token.
const (
	PrefixLen   = 4
	RandomLen   = 32
	ChecksumLen = 6
	// Len is the length of every token: prefix, underscore, random, checksum.
	Len = PrefixLen + 1 + RandomLen + ChecksumLen
)

// Alphabet is the base62 alphabet used for the random part and the checksum.
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Errors returned by Parse.
var (
	ErrFormat   = errors.New("token: malformed")
	ErrKind     = errors.New("token: unknown kind")
	ErrChecksum = errors.New("token: checksum mismatch")
)

// Valid reports whether k is one of the kinds in Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Generate returns a new random token of kind k.
func Generate(k Kind) (string, error) {
	if !k.Valid() {
		return "", ErrKind
	}
	var b [Len]byte
	copy(b[:], k)
	b[PrefixLen] = '_'
	random := b[PrefixLen+1 : PrefixLen+1+RandomLen]
	// Rejection sampling keeps every base62 digit uniform: 248 = 4*62.
	var buf [64]byte
	for i := 0; i < RandomLen; {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c >= 248 {
				continue
			}
			random[i] = Alphabet[c%62]
			i++
			if i == RandomLen {
				break
			}
		}
	}
	putChecksum(b[PrefixLen+1+RandomLen:], Checksum(b[:PrefixLen+1+RandomLen]))
	return string(b[:]), nil
}

// Checksum returns the CRC32 (IEEE) of body, the part of a token before its checksum.
func Checksum(body []byte) uint32 { return crc32.ChecksumIEEE(body) }

// EncodeChecksum writes sum as six base62 digits, left-padded with '0'.
func EncodeChecksum(sum uint32) string {
	var b [ChecksumLen]byte
	putChecksum(b[:], sum)
	return string(b[:])
}

func putChecksum(dst []byte, sum uint32) {
	for i := ChecksumLen - 1; i >= 0; i-- {
		dst[i] = Alphabet[sum%62]
		sum /= 62
	}
}

// Parse checks that s is a well-formed latch token of a known kind with a
// correct checksum and returns its kind. It does no I/O and allocates nothing,
// so it is safe to run on untrusted input before any database query.
func Parse(s string) (Kind, error) {
	k, err := ParseAnyKind(s)
	if err != nil {
		return "", err
	}
	if !k.Valid() {
		return "", ErrKind
	}
	return k, nil
}

// ParseAnyKind is Parse without the check that the prefix is a known kind; it
// still requires four lower-case letters as the prefix.
func ParseAnyKind(s string) (Kind, error) {
	if len(s) != Len || s[PrefixLen] != '_' {
		return "", ErrFormat
	}
	for i := 0; i < PrefixLen; i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return "", ErrFormat
		}
	}
	for i := PrefixLen + 1; i < Len; i++ {
		if digit(s[i]) < 0 {
			return "", ErrFormat
		}
	}
	// Comparing encodings rather than decoded values also rejects checksums
	// of six digits that overflow 32 bits.
	var enc [ChecksumLen]byte
	putChecksum(enc[:], crc32.ChecksumIEEE([]byte(s[:PrefixLen+1+RandomLen])))
	if string(enc[:]) != s[PrefixLen+1+RandomLen:] {
		return "", ErrChecksum
	}
	return Kind(s[:PrefixLen]), nil
}

func digit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}

// IsBase62 reports whether c is in Alphabet.
func IsBase62(c byte) bool { return digit(c) >= 0 }

// Digest is the keyed digest under which a token is stored and looked up:
// HMAC-SHA256 of the token with the server secret as the key.
type Digest [sha256.Size]byte

// Hasher computes token digests with one server secret. It is safe for
// concurrent use.
type Hasher struct {
	// macs pools keyed HMAC states: keying one costs as much as the digest.
	macs sync.Pool
}

// NewHasher returns a Hasher keyed by secret.
func NewHasher(secret []byte) *Hasher {
	key := append([]byte(nil), secret...)
	h := &Hasher{}
	h.macs.New = func() any { return hmac.New(sha256.New, key) }
	return h
}

// Digest returns the keyed digest of tok.
func (h *Hasher) Digest(tok string) Digest {
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, tok)
	var d Digest
	m.Sum(d[:0])
	h.macs.Put(m)
	return d
}

// Redact returns the prefix and the last four characters of tok, the form in
// which a token may be shown after its creation.
func Redact(tok string) string {
	if len(tok) <= 8 {
		return strings.Repeat("*", len(tok))
	}
	i := strings.IndexByte(tok, '_')
	if i < 0 || i > 8 {
		i = 4
	}
	return tok[:i+1] + "…" + tok[len(tok)-4:]
}
