package scan

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/scan/scantest"
	"github.com/latchhq/latch/token"
)

// want is an expected finding.
type want struct {
	rule, secret, key, pub string
	encrypted              bool
}

// corpus builds a labelled text: planted credentials of every rule (in the
// contexts they are found in) and look-alikes that must not match.
type corpus struct {
	b    strings.Builder
	want []want
}

func (c *corpus) plant(w want, text string) {
	c.want = append(c.want, w)
	c.b.WriteString(text)
}

func (c *corpus) decoy(text string) { c.b.WriteString(text) }

var keys struct {
	once                   sync.Once
	openssh, opensshFP     string
	encrypted, encryptedFP string
	ec, ecFP, rsa, rsaFP   string
}

// testKeys generates the private keys once per test binary (RSA is slow).
func testKeys() {
	keys.once.Do(func() {
		g := scantest.New(1)
		keys.openssh, keys.opensshFP = g.OpenSSHKey()
		keys.encrypted, keys.encryptedFP = g.EncryptedOpenSSHKey()
		keys.ec, keys.ecFP = g.ECKey()
		keys.rsa, keys.rsaFP = g.RSAKey(2048)
	})
}

func labelledCorpus(t testing.TB) *corpus {
	testKeys()
	g := scantest.New(42)
	c := &corpus{}
	c.decoy("package config\n\n// Settings for the deployment.\n")
	for _, k := range token.Kinds {
		tok := g.Latch(k)
		c.plant(want{rule: RuleByID(latchRuleMeta[k][0]).ID, secret: tok}, fmt.Sprintf("var %sToken = %q\n", k, tok))
	}
	tok := g.Latch(token.Personal)
	c.plant(want{rule: "latch-personal-token", secret: tok}, `{"env": "A=1\n`+tok+`\nB=2"}`+"\n")
	tok = g.Latch(token.API)
	c.plant(want{rule: "latch-api-token", secret: tok}, "curl -H 'Authorization: Bearer "+tok+"' https://latch.example/rest\n")
	c.decoy("bad := \"" + g.LatchBadChecksum(token.Personal) + "\"\n")
	c.decoy("long := \"" + g.Latch(token.Repository) + "x\"\n")
	c.decoy("prefix only: latp_ and latr_short and lata_" + strings.Repeat("A", 38) + "\n")

	bbdc := g.BBDC()
	c.plant(want{rule: "bitbucket-dc-token", secret: bbdc}, "export BITBUCKET_TOKEN="+bbdc+"\n")
	c.decoy("export OTHER=" + g.BBDCBadShape() + "\n")
	c.decoy("padded: " + g.BBDC() + "=\n")

	body := g.BBDCBody()
	c.plant(want{rule: "bitbucket-dc-token-unprefixed", secret: body}, "# Bitbucket Server (Stash) HTTP access token\nAUTH="+body+"\n")
	body = g.BBDCBody()
	c.plant(want{rule: "bitbucket-dc-token-unprefixed", secret: body}, "stash_password: \""+body+"\"\n")
	c.decoy("\n\n\n# no keyword near this one\nAUTH=" + g.BBDCBody() + "\n\n")

	app := g.AppPassword()
	c.plant(want{rule: "bitbucket-app-password", secret: app}, "git clone https://jdoe:"+app+"@bitbucket.org/team/repo.git\n")
	c.decoy("pw = " + g.AppPasswordBadChecksum() + "\n")

	api := g.AtlassianAPIToken()
	c.plant(want{rule: "atlassian-api-token", secret: api}, "JIRA_API_TOKEN=\""+api+"\"\n")
	cloud := g.CloudAccessToken()
	c.plant(want{rule: "bitbucket-access-token", secret: cloud}, "url: https://x-token-auth:"+cloud+"@bitbucket.org/ws/repo.git\n")
	c.decoy("JIRA_OLD=" + g.AtlassianBadChecksum() + "\n")
	c.decoy("JIRA_GLUED=" + g.AtlassianAPIToken() + "-x\n")

	key, secret := g.OAuthConsumer()
	c.plant(want{rule: "bitbucket-oauth-consumer", secret: secret, key: key},
		"# Bitbucket OAuth consumer for CI\nBITBUCKET_CLIENT_ID="+key+"\nBITBUCKET_CLIENT_SECRET="+secret+"\n")
	key, secret = g.OAuthConsumer()
	c.plant(want{rule: "bitbucket-oauth-consumer", secret: secret, key: key},
		"curl -X POST -u \""+key+":"+secret+"\" https://bitbucket.org/site/oauth2/access_token -d grant_type=client_credentials\n")
	key, _ = g.OAuthConsumer()
	c.decoy("\n\n\n\n\n\n# bitbucket consumer, key only\nkey: " + key + "\n\n\n\n\n\n\n")
	key, secret = g.OAuthConsumer()
	c.decoy("client_id = " + key + "\nclient_secret = " + secret + "\n\n\n\n\n\n\n") // no keyword
	c.decoy("bitbucketClientKey := cfg.BitbucketClientKey\nbitbucket_secret = \"" + g.Hex(32) + "\"\n\n\n\n\n\n\n")

	c.plant(want{rule: "ssh-private-key", secret: strings.TrimSuffix(keys.openssh, "\n"), pub: keys.opensshFP},
		"cat > ~/.ssh/id_ed25519 <<EOF\n"+keys.openssh+"EOF\n")
	c.plant(want{rule: "ssh-private-key", secret: strings.TrimSuffix(keys.ec, "\n"), pub: keys.ecFP}, keys.ec)
	c.plant(want{rule: "ssh-private-key", secret: strings.TrimSuffix(keys.rsa, "\n"), pub: keys.rsaFP}, keys.rsa)
	escaped := strings.ReplaceAll(strings.TrimSuffix(keys.rsa, "\n"), "\n", `\n`)
	c.plant(want{rule: "ssh-private-key", secret: escaped, pub: keys.rsaFP}, `{"private_key": "`+escaped+`"}`+"\n")
	lines := strings.Split(strings.TrimSuffix(keys.ec, "\n"), "\n")
	goSrc := "const key = \"" + strings.Join(lines, "\\n\" +\n\t\"") + "\"\n"
	goSecret := goSrc[strings.Index(goSrc, "-----BEGIN") : strings.LastIndex(goSrc, "-----")+5]
	c.plant(want{rule: "ssh-private-key", secret: goSecret, pub: keys.ecFP}, goSrc)
	c.plant(want{rule: "ssh-private-key", secret: strings.TrimSuffix(keys.encrypted, "\n"), pub: keys.encryptedFP, encrypted: true}, keys.encrypted)
	c.decoy(g.TruncatedKey())
	c.decoy("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")

	for i := 0; i < 20; i++ {
		c.decoy(fmt.Sprintf("sha%d = %s uuid = %s blob = %s id=%s\n", i, g.Hex(64), g.UUID(), g.Base64(44), g.Alnum(32)))
	}
	c.decoy("ghp_" + g.Alnum(36) + " is GitHub's, not ours\n")
	c.decoy("allowed := \"" + g.Latch(token.Personal) + "\" // latch:allow (test fixture)\n")
	c.decoy("the end\n")
	return c
}

func checkFindings(t *testing.T, got []Finding, want []want, data string) {
	t.Helper()
	if len(got) != len(want) {
		for _, f := range got {
			t.Logf("got %s %q at %d:%d", f.Rule.ID, f.Redacted(), f.Line, f.Column)
		}
		t.Fatalf("got %d findings, want %d", len(got), len(want))
	}
	for i, f := range got {
		w := want[i]
		if f.Rule.ID != w.rule || f.Secret != w.secret || f.Key != w.key || f.PublicKey != w.pub || f.Encrypted != w.encrypted {
			t.Errorf("finding %d: got %s secret=%q key=%q pub=%q enc=%v\nwant %s secret=%q key=%q pub=%q enc=%v",
				i, f.Rule.ID, f.Secret, f.Key, f.PublicKey, f.Encrypted, w.rule, w.secret, w.key, w.pub, w.encrypted)
			continue
		}
		if data[f.Offset:f.Offset+int64(len(f.Secret))] != f.Secret {
			t.Errorf("finding %d: offset %d does not hold the secret", i, f.Offset)
		}
		line := strings.Count(data[:f.Offset], "\n") + 1
		if f.Line != line {
			t.Errorf("finding %d (%s): line %d, want %d", i, f.Rule.ID, f.Line, line)
		}
		if f.Fingerprint == "" || len(f.Fingerprint) != 32 {
			t.Errorf("finding %d: bad fingerprint %q", i, f.Fingerprint)
		}
		if !f.Rule.Validate(f.Secret) {
			t.Errorf("finding %d: secret fails its own rule", i)
		}
	}
}

func TestLabelledCorpus(t *testing.T) {
	c := labelledCorpus(t)
	data := c.b.String()
	got := NewScanner().Scan([]byte(data), "corpus.txt")
	checkFindings(t, got, c.want, data)
	// Every rule is exercised.
	seen := map[string]bool{}
	for _, w := range c.want {
		seen[w.rule] = true
	}
	for _, r := range DefaultRules() {
		if !seen[r.ID] {
			t.Errorf("rule %s has no planted credential", r.ID)
		}
	}
}

func TestScanReaderChunks(t *testing.T) {
	c := labelledCorpus(t)
	data := c.b.String()
	s := NewScanner()
	for _, chunk := range []int{1, 7, 100, 1000} {
		got, err := s.scanReader(strings.NewReader(data), "corpus.txt", chunk, 4096)
		if err != nil {
			t.Fatal(err)
		}
		checkFindings(t, got, c.want, data)
		whole := s.Scan([]byte(data), "corpus.txt")
		for i := range got {
			if got[i].Column != whole[i].Column || got[i].EndLine != whole[i].EndLine || got[i].EndColumn != whole[i].EndColumn {
				t.Errorf("chunk %d finding %d: position %d:%d-%d:%d, whole %d:%d-%d:%d", chunk, i,
					got[i].Line, got[i].Column, got[i].EndLine, got[i].EndColumn,
					whole[i].Line, whole[i].Column, whole[i].EndLine, whole[i].EndColumn)
			}
		}
	}
}

func TestPositions(t *testing.T) {
	tok := scantest.New(1).Latch(token.Personal)
	data := "héllo\n\tx := \"" + tok + "\"\n"
	f := NewScanner().Scan([]byte(data), "p.go")
	if len(f) != 1 {
		t.Fatalf("got %d findings", len(f))
	}
	if f[0].Line != 2 || f[0].Column != 8 || f[0].EndLine != 2 || f[0].EndColumn != 8+token.Len {
		t.Fatalf("position %d:%d-%d:%d", f[0].Line, f[0].Column, f[0].EndLine, f[0].EndColumn)
	}
	if got, want := f[0].Redacted(), token.Redact(tok); got != want || strings.Contains(got, tok[5:20]) {
		t.Fatalf("Redacted = %q, want %q", got, want)
	}
}

func TestFingerprintStable(t *testing.T) {
	tok := scantest.New(1).Latch(token.Personal)
	a := NewScanner().Scan([]byte("a="+tok), "a")
	b := NewScanner().Scan([]byte("\n\nb = '"+tok+"'"), "b")
	if len(a) != 1 || len(b) != 1 || a[0].Fingerprint != b[0].Fingerprint {
		t.Fatalf("fingerprints differ: %v %v", a, b)
	}
	if a[0].Fingerprint != FingerprintOf("latch-personal-token", tok) {
		t.Fatal("fingerprint is not FingerprintOf(rule, secret)")
	}
	// The same key in two encodings has one fingerprint.
	testKeys()
	k1 := NewScanner().Scan([]byte(keys.rsa), "a")
	k2 := NewScanner().Scan([]byte(`"`+strings.ReplaceAll(keys.rsa, "\n", `\n`)+`"`), "b")
	if len(k1) != 1 || len(k2) != 1 || k1[0].Fingerprint != k2[0].Fingerprint {
		t.Fatalf("key fingerprints differ")
	}
}

func TestLatchRulesOnly(t *testing.T) {
	g := scantest.New(3)
	tok := g.Latch(token.OAuthConsumer)
	data := "x=" + g.AppPassword() + "\ny=" + tok + "\n"
	got := NewScanner(LatchRules()...).Scan([]byte(data), "f")
	if len(got) != 1 || got[0].Secret != tok || got[0].Kind != token.OAuthConsumer {
		t.Fatalf("got %+v", got)
	}
}

func TestBinary(t *testing.T) {
	if !IsBinary([]byte("abc\x00def")) || IsBinary([]byte("plain text\n")) {
		t.Fatal("IsBinary")
	}
}

func TestAnchorSetFindsEveryOccurrence(t *testing.T) {
	specs := []anchorSpec{{lit: "latp_"}, {lit: "latr_"}, {lit: "ATBB"}, {lit: "bitbucket", fold: true}, {lit: "-----BEGIN "}}
	a := newAnchorSet(specs)
	data := []byte("xlatp_ latr_ATBB BitBucket BITBUCKET bitbucke -----BEGIN latp_")
	var got []string
	a.find(data, func(id, start int) { got = append(got, fmt.Sprintf("%s@%d", specs[id].lit, start)) })
	want := map[string]bool{"latp_@1": true, "latr_@7": true, "ATBB@12": true, "bitbucket@17": true,
		"bitbucket@27": true, "-----BEGIN @46": true, "latp_@57": true}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, g := range got {
		if !want[g] {
			t.Fatalf("unexpected %s in %v", g, got)
		}
	}
}

func TestLooksRandom(t *testing.T) {
	for _, s := range []string{"BitbucketClientKey", "d41d8cd98f00b204e9800998ecf8427e", "ABCDEF0123456789AB", "abcdefghijklmnopqr"} {
		if looksRandom([]byte(s)) {
			t.Errorf("looksRandom(%q)", s)
		}
	}
	g := scantest.New(9)
	for i := 0; i < 100; i++ {
		k, s := g.OAuthConsumer()
		if !looksRandom([]byte(k)) || !looksRandom([]byte(s)) {
			t.Errorf("looksRandom(%q / %q) = false", k, s)
		}
	}
}

func TestHugeLineStaysLinear(t *testing.T) {
	// A keyword every few bytes on one enormous line must not go quadratic.
	data := bytes.Repeat([]byte("bitbucket stash "), 1<<16)
	if got := NewScanner().Scan(data, "min.js"); len(got) != 0 {
		t.Fatalf("got %d findings", len(got))
	}
}

// TestDenseOneLine: credentials packed on one 2 MB line (minified files) are
// all found, in linear time.
func TestDenseOneLine(t *testing.T) {
	g := scantest.New(1)
	var b strings.Builder
	n := 0
	for b.Len() < 2<<20 {
		k, s := g.OAuthConsumer()
		b.WriteString("bitbucket key " + k + " secret " + s + " stash " + g.BBDCBody() + " ")
		n++
	}
	c := map[string]int{}
	for _, f := range NewScanner().Scan([]byte(b.String()), "min.js") {
		c[f.Rule.ID]++
	}
	if c["bitbucket-dc-token-unprefixed"] != n || c["bitbucket-oauth-consumer"] < n {
		t.Fatalf("planted %d of each, found %v", n, c)
	}
}

func TestIgnoringAllowMarkers(t *testing.T) {
	tok := scantest.New(4).Latch(token.Repository)
	data := []byte("x = " + tok + " // latch:allow\n")
	s := NewScanner(LatchRules()...)
	if got := s.Scan(data, "f"); len(got) != 0 {
		t.Fatalf("marker ignored: %v", got)
	}
	if got := s.IgnoringAllowMarkers().Scan(data, "f"); len(got) != 1 || got[0].Secret != tok {
		t.Fatalf("IgnoringAllowMarkers: %v", got)
	}
	if got := s.Scan(data, "f"); len(got) != 0 {
		t.Fatal("IgnoringAllowMarkers changed the original scanner")
	}
}
