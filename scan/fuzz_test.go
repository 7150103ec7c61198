package scan

import (
	"bytes"
	"strings"
	"testing"

	"github.com/latchhq/latch/scan/scantest"
	"github.com/latchhq/latch/token"
)

// FuzzScan checks, on arbitrary bytes, that scanning never panics and that
// every finding is a piece of the input that passes its rule's validation.
func FuzzScan(f *testing.F) {
	c := labelledCorpus(f)
	f.Add([]byte(c.b.String()))
	g := scantest.New(99)
	key, secret := g.OAuthConsumer()
	for _, s := range []string{
		g.Latch(token.Personal), g.LatchBadChecksum(token.API), g.BBDC(), "stash " + g.BBDCBody(), g.AppPassword(),
		g.AtlassianAPIToken(), g.CloudAccessToken(), "bitbucket\nkey=" + key + "\nsecret=" + secret, keys.openssh,
		`"` + strings.ReplaceAll(keys.ec, "\n", `\n`) + `"`, g.TruncatedKey(), "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
		"latp_", "BBDC-", "ATBB", "ATATT3", "-----BEGIN ", "\x00\xff bitbucket",
	} {
		f.Add([]byte(s))
	}
	s := NewScanner()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fd := range s.Scan(data, "fuzz") {
			if fd.Offset < 0 || fd.Offset+int64(len(fd.Secret)) > int64(len(data)) ||
				string(data[fd.Offset:fd.Offset+int64(len(fd.Secret))]) != fd.Secret {
				t.Fatalf("%s: secret %q is not at offset %d", fd.Rule.ID, fd.Secret, fd.Offset)
			}
			if !fd.Rule.Validate(fd.Secret) {
				t.Fatalf("%s: secret %q fails its rule", fd.Rule.ID, fd.Secret)
			}
			if fd.Rule.Paired && (len(fd.Key) != oauthKeyLen || !validOAuthPart([]byte(fd.Key)) || !bytes.Contains(data, []byte(fd.Key))) {
				t.Fatalf("%s: bad key %q", fd.Rule.ID, fd.Key)
			}
			if fd.Line < 1 || fd.Column < 1 || fd.EndLine < fd.Line || len(fd.Fingerprint) != 32 {
				t.Fatalf("%s: bad position or fingerprint %+v", fd.Rule.ID, fd)
			}
			if fd.Kind != "" {
				if k, err := token.Parse(fd.Secret); err != nil || k != fd.Kind {
					t.Fatalf("latch finding %q of kind %q: %v", fd.Secret, fd.Kind, err)
				}
			}
		}
	})
}
