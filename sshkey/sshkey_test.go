package sshkey

import (
	//lint:ignore SA1019 DSA keys are built to check that they are refused.
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func authorized(t testing.TB, pub any, comment string) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
	if comment != "" {
		s += " " + comment
	}
	return s
}

func TestParse(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ec := func(c elliptic.Curve) *ecdsa.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	rsaKey := func(bits int) *rsa.PublicKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	var dk dsa.PrivateKey
	if err := dsa.GenerateParameters(&dk.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(&dk, rand.Reader); err != nil {
		t.Fatal(err)
	}
	// A certificate for the Ed25519 key, signed by a throwaway CA.
	caSigner, _ := ssh.NewSignerFromKey(edPriv)
	edSSH, _ := ssh.NewPublicKey(edPub)
	cert := &ssh.Certificate{Key: edSSH, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	certText := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
	ed := authorized(t, edPub, "alice@laptop")
	// Security keys in OpenSSH's wire form: the key, then the FIDO
	// application ("ssh:" by default).
	skEd := "sk-ssh-ed25519@openssh.com " + base64.StdEncoding.EncodeToString(ssh.Marshal(struct {
		Type, Key, Application string
	}{ssh.KeyAlgoSKED25519, string(edPub), "ssh:"})) + " yubikey"
	point, err := ec(elliptic.P256()).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	skEC := "sk-ecdsa-sha2-nistp256@openssh.com " + base64.StdEncoding.EncodeToString(ssh.Marshal(struct {
		Type, Curve, Point, Application string
	}{ssh.KeyAlgoSKECDSA256, "nistp256", string(point), "ssh:"}))

	tests := []struct {
		name    string
		text    string
		alg     string
		bits    int
		comment string
		wantErr string // substring of the refusal
	}{
		{"ed25519", ed, AlgEd25519, 256, "alice@laptop", ""},
		{"ed25519 trailing newline", ed + "\n", AlgEd25519, 256, "alice@laptop", ""},
		{"ed25519 no comment", authorized(t, edPub, ""), AlgEd25519, 256, "", ""},
		{"comment with spaces", authorized(t, edPub, "build server 1"), AlgEd25519, 256, "build server 1", ""},
		{"ecdsa 256", authorized(t, ec(elliptic.P256()), "c"), AlgECDSA, 256, "c", ""},
		{"ecdsa 384", authorized(t, ec(elliptic.P384()), "c"), AlgECDSA, 384, "c", ""},
		{"ecdsa 521", authorized(t, ec(elliptic.P521()), "c"), AlgECDSA, 521, "c", ""},
		{"rsa 2048", authorized(t, rsaKey(2048), "r"), AlgRSA, 2048, "r", ""},
		{"rsa 3072", authorized(t, rsaKey(3072), ""), AlgRSA, 3072, "", ""},
		{"rsa 1024", authorized(t, rsaKey(1024), ""), "", 0, "", "at least 2048 bits; this key has 1024"},
		{"dsa", authorized(t, &dk.PublicKey, ""), "", 0, "", "DSA keys are not accepted"},
		{"certificate", certText, "", 0, "", "certificates are not accepted"},
		{"security key ed25519", skEd, AlgEd25519SK, 256, "yubikey", ""},
		{"security key ecdsa", skEC, AlgECDSASK, 256, "", ""},
		{"security key without its key", "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA== x", "", 0, "", "malformed"},
		{"empty", "  \n", "", 0, "", "required"},
		{"garbage", "hello world", "", 0, "", "not a valid SSH public key"},
		{"bad base64", "ssh-ed25519 AAAA!!!! x", "", 0, "", "malformed"},
		{"wrong blob for type", "ssh-ed25519 " + strings.Fields(authorized(t, rsaKey(1024), ""))[1], "", 0, "", "malformed"},
		{"two keys", ed + "\n" + ed, "", 0, "", "exactly one key on one line"},
		{"options", `command="/bin/sh" ` + ed, "", 0, "", "options"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----", "", 0, "", "private key"},
		{"too long", "ssh-rsa " + strings.Repeat("A", MaxTextLen), "", 0, "", "too long"},
		{"not utf8", "ssh-ed25519 \xff\xfe", "", 0, "", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Parse(tc.text)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse accepted %q", tc.text)
				}
				if !IsError(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error %q, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if k.Algorithm != tc.alg || k.Bits != tc.bits || k.Comment != tc.comment {
				t.Errorf("got %s %d %q, want %s %d %q", k.Algorithm, k.Bits, k.Comment, tc.alg, tc.bits, tc.comment)
			}
			if want := ssh.FingerprintSHA256(k.PublicKey); k.Fingerprint != want {
				t.Errorf("fingerprint %s, want %s", k.Fingerprint, want)
			}
			if strings.HasSuffix(k.Text, "\n") || !strings.HasPrefix(k.Text, k.PublicKey.Type()+" ") {
				t.Errorf("text not normalized: %q", k.Text)
			}
			again, err := Parse(k.Text)
			if err != nil || again.Fingerprint != k.Fingerprint || again.Text != k.Text {
				t.Errorf("re-parsing the normalized text: %v, %+v", err, again)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(authorized(f, pub, "seed"))
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x")
	f.Add("ssh-dss AAAA")
	f.Add("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA==")
	f.Add(`from="10.0.0.1" ssh-ed25519 AAAA`)
	f.Add("sk-ssh-ed25519@openssh.com " + base64.StdEncoding.EncodeToString(ssh.Marshal(struct {
		Type, Key, Application string
	}{ssh.KeyAlgoSKED25519, string(pub), "ssh:"})) + " seed")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := Parse(text)
		if err != nil {
			if !IsError(err) {
				t.Fatalf("refusal of type %T: %v", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty refusal message")
			}
			return
		}
		switch k.Algorithm {
		case AlgEd25519, AlgECDSA, AlgEd25519SK, AlgECDSASK:
		case AlgRSA:
			if k.Bits < MinRSABits || k.Bits > MaxRSABits {
				t.Fatalf("accepted RSA of %d bits", k.Bits)
			}
		default:
			t.Fatalf("accepted algorithm %q", k.Algorithm)
		}
		again, err := Parse(k.Text)
		if err != nil || again.Fingerprint != k.Fingerprint || again.Text != k.Text {
			t.Fatalf("normalized text %q does not re-parse to itself: %v", k.Text, err)
		}
	})
}
