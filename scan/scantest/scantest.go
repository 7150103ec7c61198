// Package scantest builds credentials of every kind package scan detects, and
// look-alikes it must not report, for tests, benchmarks and fuzzing. The
// credentials are well-formed (valid checksums and shapes) but random: none of
// them is live anywhere.
package scantest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"

	"github.com/latchhq/latch/token"
	"golang.org/x/crypto/ssh"
)

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Gen makes credentials from a seeded source, so that a corpus can be made
// again; latch tokens come from token.Generate.
type Gen struct{ r *rand.Rand }

// New returns a Gen seeded with seed.
func New(seed uint64) *Gen { return &Gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// Intn returns a number in [0, n).
func (g *Gen) Intn(n int) int { return g.r.IntN(n) }

func (g *Gen) pick(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (g *Gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

// Latch returns a new latch token of kind k.
func (g *Gen) Latch(k token.Kind) string {
	t, err := token.Generate(k)
	if err != nil {
		panic(fmt.Sprintf("scantest: token.Generate(%q): %v", k, err))
	}
	return t
}

// LatchBadChecksum returns a latch-shaped token of kind k whose checksum is
// wrong.
func (g *Gen) LatchBadChecksum(k token.Kind) string {
	t := g.Latch(k)
	b := []byte(t)
	i := token.Len - 1
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// BBDCBody returns the 44-character base64 body of a Data Center token.
func (g *Gen) BBDCBody() string {
	id := g.pick("0123456789", 12)
	return base64.StdEncoding.EncodeToString(append([]byte(id+":"), g.bytes(20)...))
}

// BBDC returns a Bitbucket Data Center HTTP access token.
func (g *Gen) BBDC() string { return "BBDC-" + g.BBDCBody() }

// BBDCBadShape returns a BBDC- token whose body decodes to something other
// than digits, ':' and 20 bytes.
func (g *Gen) BBDCBadShape() string {
	return "BBDC-" + base64.StdEncoding.EncodeToString(append([]byte(g.pick("abcdefghij", 12)+":"), g.bytes(20)...))
}

// AppPassword returns a Bitbucket app password.
func (g *Gen) AppPassword() string {
	s := "ATBB" + g.pick(alnum, 24)
	return s + fmt.Sprintf("%08X", crc32.ChecksumIEEE([]byte(s)))
}

// AppPasswordBadChecksum returns an app-password look-alike with a wrong
// checksum.
func (g *Gen) AppPasswordBadChecksum() string {
	s := "ATBB" + g.pick(alnum, 24)
	return s + fmt.Sprintf("%08X", crc32.ChecksumIEEE([]byte(s))^1)
}

func (g *Gen) atlassian(prefix string, bad bool) string {
	s := prefix + g.pick(alnum+"-_", 192-len(prefix)-9) + "="
	sum := crc32.ChecksumIEEE([]byte(s))
	if bad {
		sum ^= 0x10
	}
	return s + fmt.Sprintf("%08X", sum)
}

// AtlassianAPIToken returns an Atlassian API token (ATATT3…).
func (g *Gen) AtlassianAPIToken() string { return g.atlassian("ATATT3xFfGF0", false) }

// CloudAccessToken returns a Bitbucket Cloud access token (ATCTT3…).
func (g *Gen) CloudAccessToken() string { return g.atlassian("ATCTT3xFfGN0", false) }

// AtlassianBadChecksum returns an ATATT3 look-alike with a wrong checksum.
func (g *Gen) AtlassianBadChecksum() string { return g.atlassian("ATATT3xFfGF0", true) }

// OAuthConsumer returns a Bitbucket OAuth consumer key and secret that look
// random enough to be reported (about 99% of random ones do).
func (g *Gen) OAuthConsumer() (key, secret string) {
	return g.randomWord(18), g.randomWord(32)
}

func (g *Gen) randomWord(n int) string {
	for {
		s := g.pick(alnum, n)
		if strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
			strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") && changes(s)*2 >= n {
			return s
		}
	}
}

func changes(s string) int {
	class := func(c byte) int {
		switch {
		case c >= 'A' && c <= 'Z':
			return 1
		case c >= 'a' && c <= 'z':
			return 2
		}
		return 0
	}
	n := 0
	for i := 1; i < len(s); i++ {
		if class(s[i]) != class(s[i-1]) {
			n++
		}
	}
	return n
}

// Hex returns n random lower-case hex digits (a hash look-alike).
func (g *Gen) Hex(n int) string { return hex.EncodeToString(g.bytes(n/2 + 1))[:n] }

// UUID returns a random UUID-shaped string.
func (g *Gen) UUID() string {
	h := g.Hex(32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// Base64 returns n random standard base64 characters.
func (g *Gen) Base64(n int) string {
	return g.pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", n)
}

// Alnum returns n random alphanumerics.
func (g *Gen) Alnum(n int) string { return g.pick(alnum, n) }

// OpenSSHKey returns an unencrypted Ed25519 private key in OpenSSH format
// and the SHA256 fingerprint of its public key.
func (g *Gen) OpenSSHKey() (pemText, fingerprint string) {
	pub, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		panic(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "scantest")
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(blk)), ssh.FingerprintSHA256(sp)
}

// EncryptedOpenSSHKey returns a passphrase-protected Ed25519 key in OpenSSH
// format and its public fingerprint (readable without the passphrase).
func (g *Gen) EncryptedOpenSSHKey() (pemText, fingerprint string) {
	pub, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		panic(err)
	}
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "scantest", []byte("passphrase"))
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(blk)), ssh.FingerprintSHA256(sp)
}

// ECKey returns a P-256 private key as "EC PRIVATE KEY" PEM and its public
// fingerprint.
func (g *Gen) ECKey() (pemText, fingerprint string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), ssh.FingerprintSHA256(sp)
}

// RSAKey returns an RSA private key of the given size as "RSA PRIVATE KEY"
// (PKCS #1) PEM and its public fingerprint.
func (g *Gen) RSAKey(bits int) (pemText, fingerprint string) {
	k, err := rsa.GenerateKey(crand.Reader, bits)
	if err != nil {
		panic(err)
	}
	sp, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	der := x509.MarshalPKCS1PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})), ssh.FingerprintSHA256(sp)
}

// TruncatedKey returns a private-key look-alike as found in documentation:
// BEGIN and END lines around a placeholder.
func (g *Gen) TruncatedKey() string {
	return "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA...\n...snip...\n-----END RSA PRIVATE KEY-----\n"
}
