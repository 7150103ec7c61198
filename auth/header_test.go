package auth

import (
	"encoding/base64"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	b := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		h      string
		want   Credentials
		errors bool
	}{
		{"", Credentials{}, false},
		{b("alice:pw:with:colons"), Credentials{SchemeBasic, "alice", "pw:with:colons"}, false},
		{"basic " + base64.RawStdEncoding.EncodeToString([]byte("a:b")), Credentials{SchemeBasic, "a", "b"}, false},
		{"Bearer latp_abc", Credentials{SchemeBearer, "", "latp_abc"}, false},
		{"Basic", Credentials{}, true},
		{"Basic !!!", Credentials{}, true},
		{b("nocolon"), Credentials{}, true},
		{b(":pw"), Credentials{}, true},
		{b("user:"), Credentials{}, true},
		{b("a\xff:b"), Credentials{}, true},
		{"Bearer", Credentials{}, true},
		{"Bearer a b", Credentials{}, true},
		{"Digest x", Credentials{}, true},
	} {
		got, err := ParseAuthorization(tc.h)
		if (err != nil) != tc.errors || got != tc.want {
			t.Errorf("ParseAuthorization(%q) = %+v, %v", tc.h, got, err)
		}
	}
}

// Two Authorization headers are refused whatever they hold: which one a
// server or proxy honours differs, so the request is ambiguous.
func TestParseAuthorizations(t *testing.T) {
	if c, err := ParseAuthorizations(nil); err != nil || c != (Credentials{}) {
		t.Errorf("no header: %+v, %v", c, err)
	}
	if c, err := ParseAuthorizations([]string{"Bearer latp_abc"}); err != nil || c.Secret != "latp_abc" {
		t.Errorf("one header: %+v, %v", c, err)
	}
	if c, err := ParseAuthorizations([]string{"Bearer latp_abc", "Basic !!!"}); err != ErrMalformed || c != (Credentials{}) {
		t.Errorf("two headers: %+v, %v, want ErrMalformed", c, err)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("Basic YWxpY2U6cHc=")
	f.Add("Bearer latp_x")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseAuthorization(h)
		if err != nil {
			if c != (Credentials{}) {
				t.Fatalf("error with credentials %+v", c)
			}
			return
		}
		switch c.Scheme {
		case SchemeBasic:
			if c.Username == "" || c.Secret == "" {
				t.Fatalf("empty basic parts from %q", h)
			}
		case SchemeBearer:
			if c.Secret == "" || c.Username != "" {
				t.Fatalf("bad bearer from %q", h)
			}
		case SchemeNone:
			if c.Secret != "" {
				t.Fatalf("secret without scheme from %q", h)
			}
		}
	})
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyPassword(h, "s3cret") || VerifyPassword(h, "s3creT") || VerifyPassword("garbage", "s3cret") {
		t.Fatal("VerifyPassword wrong")
	}
	if h2, _ := HashPassword("s3cret"); h2 == h {
		t.Fatal("hash not salted")
	}
}
