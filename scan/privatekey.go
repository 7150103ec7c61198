package scan

import (
	"bytes"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"

	"golang.org/x/crypto/ssh"
)

// maxKeyBlock bounds how far the END line of a private key may be from its
// BEGIN line (an RSA 16384-bit key in PEM is about 12 KB).
const maxKeyBlock = 32 << 10

// privateKeyLabels are the PEM types reported.
var privateKeyLabels = map[string]bool{
	"OPENSSH PRIVATE KEY":   true,
	"RSA PRIVATE KEY":       true,
	"EC PRIVATE KEY":        true,
	"DSA PRIVATE KEY":       true,
	"PRIVATE KEY":           true,
	"ENCRYPTED PRIVATE KEY": true,
}

// privateKeyDetector finds private keys in PEM form, including PEM blocks in
// string literals with `\n` escapes or one quoted line per base64 line.
type privateKeyDetector struct{}

func (privateKeyDetector) prefixes() []string { return []string{"-----BEGIN "} }

func (d privateKeyDetector) at(data []byte, start int) (match, bool) {
	hdr := start + len("-----BEGIN ")
	lim := min(len(data), hdr+32)
	i := bytes.Index(data[hdr:lim], []byte("-----"))
	if i < 0 {
		return match{}, false
	}
	label := string(data[hdr : hdr+i])
	if !privateKeyLabels[label] {
		return match{}, false
	}
	bodyStart := hdr + i + 5
	endMarker := "-----END " + label + "-----"
	lim = min(len(data), bodyStart+maxKeyBlock)
	j := bytes.Index(data[bodyStart:lim], []byte(endMarker))
	if j < 0 {
		return match{}, false
	}
	end := bodyStart + j + len(endMarker)
	info, ok := parseKeyBlock(string(data[start:end]))
	if !ok {
		return match{}, false
	}
	m := match{start: start, end: end, publicKey: info.fingerprint, encrypted: info.encrypted}
	if info.fingerprint != "" {
		m.canonical = "public:" + info.fingerprint
	} else {
		m.canonical = "body:" + info.body
	}
	return m, true
}

func (privateKeyDetector) validate(secret string) bool {
	_, ok := parseKeyBlock(secret)
	return ok
}

func (privateKeyDetector) redact(secret string) string {
	if i := strings.Index(secret[min(len(secret), 11):], "-----"); i >= 0 {
		return secret[:11+i+5] + "…"
	}
	return "-----BEGIN …"
}

// keyInfo is what a private key block tells without a passphrase.
type keyInfo struct {
	fingerprint string // SHA256:… of the public key, when derivable
	encrypted   bool
	body        string // base64 body, whitespace removed
}

// parseKeyBlock normalises a PEM block found in text (escaped newlines,
// quoted lines, comment markers) and checks that its body decodes to a key:
// an OpenSSH key envelope, or a complete DER structure for the other types.
func parseKeyBlock(block string) (keyInfo, bool) {
	if !strings.HasPrefix(block, "-----BEGIN ") {
		return keyInfo{}, false
	}
	rest := block[len("-----BEGIN "):]
	i := strings.Index(rest, "-----")
	if i < 0 {
		return keyInfo{}, false
	}
	label := rest[:i]
	endMarker := "-----END " + label + "-----"
	if !privateKeyLabels[label] || !strings.HasSuffix(block, endMarker) || len(rest) < i+5+len(endMarker) {
		return keyInfo{}, false
	}
	inner := rest[i+5 : len(rest)-len(endMarker)]
	var lines []string
	for _, raw := range strings.Split(strings.ReplaceAll(inner, "\r", ""), "\n") {
		// Quotes first, so that a trailing `\n" +` goes with them; then
		// the escaped line breaks inside what is left.
		ln := keyEscapes.Replace(cleanKeyLine(raw))
		lines = append(lines, strings.Split(ln, "\n")...)
	}
	var headers, body []string
	for _, ln := range lines {
		ln = cleanKeyLine(ln)
		if ln == "" {
			continue
		}
		if strings.Contains(ln, ":") {
			if len(body) > 0 {
				return keyInfo{}, false
			}
			headers = append(headers, ln)
			continue
		}
		ln = strings.Join(strings.Fields(ln), "")
		if !allIn([]byte(ln), &classBase64Pad) {
			return keyInfo{}, false
		}
		body = append(body, ln)
	}
	if len(body) == 0 {
		return keyInfo{}, false
	}
	var sb strings.Builder
	sb.WriteString("-----BEGIN " + label + "-----\n")
	for _, h := range headers {
		sb.WriteString(h + "\n")
	}
	if len(headers) > 0 {
		sb.WriteString("\n")
	}
	for _, b := range body {
		sb.WriteString(b + "\n")
	}
	sb.WriteString(endMarker + "\n")
	pemBytes := []byte(sb.String())
	p, _ := pem.Decode(pemBytes)
	if p == nil || len(p.Bytes) == 0 {
		return keyInfo{}, false
	}
	info := keyInfo{body: base64.StdEncoding.EncodeToString(p.Bytes)}
	switch {
	case label == "OPENSSH PRIVATE KEY":
		if !bytes.HasPrefix(p.Bytes, []byte("openssh-key-v1\x00")) {
			return keyInfo{}, false
		}
	case strings.Contains(p.Headers["Proc-Type"], "ENCRYPTED"):
		// Legacy encrypted PEM: the body is ciphertext.
		info.encrypted = true
		return info, len(p.Bytes)%8 == 0
	default:
		var seq asn1.RawValue
		rest, err := asn1.Unmarshal(p.Bytes, &seq)
		if err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence || !seq.IsCompound {
			return keyInfo{}, false
		}
		if label == "ENCRYPTED PRIVATE KEY" {
			info.encrypted = true
			return info, true
		}
	}
	key, err := ssh.ParseRawPrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		if s, err := ssh.NewSignerFromKey(key); err == nil {
			info.fingerprint = ssh.FingerprintSHA256(s.PublicKey())
		}
	case errors.As(err, &missing):
		info.encrypted = true
		if missing.PublicKey != nil {
			info.fingerprint = ssh.FingerprintSHA256(missing.PublicKey)
		}
	case label == "RSA PRIVATE KEY":
		// crypto/rsa refuses keys under 1024 bits; the public half is
		// still readable from the PKCS #1 structure.
		info.fingerprint = pkcs1Fingerprint(p.Bytes)
	}
	return info, true
}

// keyEscapes turns the escaped line breaks of string literals into newlines.
var keyEscapes = strings.NewReplacer(`\r\n`, "\n", `\n`, "\n", `\r`, "")

// cleanKeyLine strips what surrounds a base64 line in source code: blanks,
// quotes with what lies outside them, comment markers.
func cleanKeyLine(ln string) string {
	ln = strings.TrimSpace(ln)
	if q := strings.IndexAny(ln, "\"'`"); q >= 0 {
		if r := strings.LastIndexAny(ln, "\"'`"); r > q {
			ln = ln[q+1 : r]
		} else if q == 0 {
			ln = ln[1:]
		} else {
			ln = ln[:q]
		}
	}
	for _, p := range []string{"# ", "// ", "* ", "; ", "-- "} {
		ln = strings.TrimPrefix(ln, p)
	}
	return strings.TrimSpace(ln)
}

// pkcs1Fingerprint returns the SHA256 fingerprint of the public half of a
// PKCS #1 RSA private key, or "".
func pkcs1Fingerprint(der []byte) string {
	var k struct {
		Version int
		N       *big.Int
		E       int
		D       *big.Int
		P       *big.Int
		Q       *big.Int
		Dp      *big.Int
		Dq      *big.Int
		Qinv    *big.Int
		Primes  []asn1.RawValue `asn1:"optional,omitempty"`
	}
	if _, err := asn1.Unmarshal(der, &k); err != nil || k.N == nil || k.N.Sign() <= 0 {
		return ""
	}
	pub, err := ssh.NewPublicKey(&rsa.PublicKey{N: k.N, E: k.E})
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(pub)
}
