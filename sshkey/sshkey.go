// Package sshkey parses and validates the SSH public keys users and
// administrators add to latch: one key in OpenSSH authorized_keys form
// ("TYPE BASE64 [COMMENT]"), of an accepted algorithm and size.
//
// Accepted: Ed25519, ECDSA on the NIST P-256, P-384 and P-521 curves, RSA of
// at least 2048 (at most 16384) bits, and the FIDO security-key kinds
// OpenSSH makes with ssh-keygen -t ed25519-sk or ecdsa-sk. Refused, each
// with a message fit for the client: DSA, shorter RSA, certificates (latch
// has no certificate authority configured), key options and anything that
// is not exactly one public key.
package sshkey

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// Limits.
const (
	// MaxTextLen is the longest key text accepted (an RSA 16384 key is about 2.8 KB).
	MaxTextLen = 16 << 10
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
	// MaxRSABits is the largest RSA modulus accepted; larger keys only cost CPU.
	MaxRSABits = 16384
	// MaxLabelLen is the longest label (and so comment used as label) kept.
	MaxLabelLen = 255
)

// Algorithm types, as Data Center names them in algorithmType; the
// security-key kinds, which Data Center does not accept, add "_SK".
const (
	AlgRSA       = "RSA"
	AlgECDSA     = "ECDSA"
	AlgEd25519   = "ED25519"
	AlgECDSASK   = "ECDSA_SK"
	AlgEd25519SK = "ED25519_SK"
)

// Key is a parsed, accepted public key.
type Key struct {
	// PublicKey is the key itself.
	PublicKey ssh.PublicKey
	// Text is the key in normalized authorized_keys form: "TYPE BASE64"
	// followed by " COMMENT" when it has one.
	Text string
	// Comment is the key's comment, "" for none.
	Comment string
	// Algorithm is one of the Alg constants.
	Algorithm string
	// Bits is the key size: the RSA modulus, the ECDSA curve size, 256 for
	// Ed25519 and both security-key kinds.
	Bits int
	// Fingerprint is the SHA-256 fingerprint as OpenSSH prints it: "SHA256:" and
	// unpadded base64.
	Fingerprint string
}

// Error is a refusal with a message fit for the client.
type Error struct{ Message string }

func (e *Error) Error() string { return e.Message }

func errorf(format string, args ...any) error { return &Error{Message: fmt.Sprintf(format, args...)} }

// Supported is the sentence that closes most refusals.
const Supported = "latch accepts Ed25519, ECDSA (256, 384 or 521 bits), RSA keys of at least 2048 bits and security keys (ed25519-sk, ecdsa-sk)."

// Parse parses text as one public key in authorized_keys form and checks
// that latch accepts it. Leading and trailing white space is ignored; a
// trailing newline is common when a key is pasted.
func Parse(text string) (*Key, error) {
	if len(text) > MaxTextLen {
		return nil, errorf("The SSH key is too long (%d bytes, at most %d). %s", len(text), MaxTextLen, Supported)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errorf("The SSH key text is required.")
	}
	if !utf8.ValidString(text) {
		return nil, errorf("The SSH key text is not valid UTF-8 text.")
	}
	if strings.HasPrefix(text, "-----BEGIN") {
		if strings.Contains(text, "PRIVATE KEY") {
			return nil, errorf("This is a private key: add the public key (the .pub file) instead, and keep the private key secret.")
		}
		return nil, errorf("The SSH key must be in OpenSSH form (\"ssh-ed25519 AAAA... comment\"), as in a .pub file. %s", Supported)
	}
	if strings.ContainsAny(text, "\r\n") {
		return nil, errorf("The SSH key text must hold exactly one key on one line.")
	}
	fields := strings.Fields(text)
	typ := fields[0]
	if r := refusedType(typ); r != nil {
		return nil, r
	}
	pk, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		if knownType(typ) {
			return nil, errorf("The %s key is malformed: its base64 data does not decode to a key of that type.", typ)
		}
		return nil, errorf("The text is not a valid SSH public key. %s", Supported)
	}
	if len(options) > 0 {
		return nil, errorf("Key options (such as command= or from=) are not accepted: add the bare key.")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errorf("The SSH key text must hold exactly one key.")
	}
	k := &Key{PublicKey: pk, Comment: cleanComment(comment)}
	if err := k.classify(); err != nil {
		return nil, err
	}
	k.Text = pk.Type() + " " + base64.StdEncoding.EncodeToString(pk.Marshal())
	if k.Comment != "" {
		k.Text += " " + k.Comment
	}
	k.Fingerprint = Fingerprint(pk)
	return k, nil
}

// cleanComment keeps a printable comment of bounded length.
func cleanComment(c string) string {
	c = strings.TrimSpace(c)
	c = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) || r == ' ' {
			return r
		}
		return -1
	}, c)
	if utf8.RuneCountInString(c) > MaxLabelLen {
		c = string([]rune(c)[:MaxLabelLen])
	}
	return c
}

func knownType(t string) bool {
	switch t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return true
	}
	return false
}

// refusedType explains why a key type is refused before decoding it.
func refusedType(t string) error {
	switch {
	case t == "ssh-dss":
		return errorf("DSA keys are not accepted: they are limited to 1024 bits and OpenSSH no longer supports them. %s", Supported)
	case strings.Contains(t, "-cert-v01@openssh.com"):
		return errorf("SSH certificates are not accepted: latch has no certificate authority configured. Add the plain public key instead.")
	}
	return nil
}

func (k *Key) classify() error {
	switch k.PublicKey.Type() {
	case ssh.KeyAlgoED25519:
		k.Algorithm, k.Bits = AlgEd25519, 256
		return nil
	case ssh.KeyAlgoSKED25519:
		k.Algorithm, k.Bits = AlgEd25519SK, 256
		return nil
	case ssh.KeyAlgoSKECDSA256:
		k.Algorithm, k.Bits = AlgECDSASK, 256
		return nil
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		cpk, ok := k.PublicKey.(ssh.CryptoPublicKey)
		if !ok {
			return errorf("The ECDSA key could not be read. %s", Supported)
		}
		ek, ok := cpk.CryptoPublicKey().(*ecdsa.PublicKey)
		if !ok {
			return errorf("The ECDSA key could not be read. %s", Supported)
		}
		k.Algorithm, k.Bits = AlgECDSA, ek.Curve.Params().BitSize
		return nil
	case ssh.KeyAlgoRSA:
		cpk, ok := k.PublicKey.(ssh.CryptoPublicKey)
		if !ok {
			return errorf("The RSA key could not be read. %s", Supported)
		}
		rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return errorf("The RSA key could not be read. %s", Supported)
		}
		bits := rk.N.BitLen()
		if bits < MinRSABits {
			return errorf("RSA keys must be at least %d bits; this key has %d bits. %s", MinRSABits, bits, Supported)
		}
		if bits > MaxRSABits {
			return errorf("RSA keys may be at most %d bits; this key has %d bits.", MaxRSABits, bits)
		}
		k.Algorithm, k.Bits = AlgRSA, bits
		return nil
	}
	if r := refusedType(k.PublicKey.Type()); r != nil {
		return r
	}
	return errorf("%s keys are not accepted. %s", k.PublicKey.Type(), Supported)
}

// Fingerprint returns the SHA-256 fingerprint of pk as OpenSSH prints it:
// "SHA256:" followed by the unpadded base64 of the digest of its wire form.
func Fingerprint(pk ssh.PublicKey) string {
	sum := sha256.Sum256(pk.Marshal())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Describe returns "ED25519 256" style text: algorithm and size.
func (k *Key) Describe() string { return fmt.Sprintf("%s %d", k.Algorithm, k.Bits) }

// IsError reports whether err is a refusal from Parse.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
