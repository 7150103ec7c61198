package leaks

import (
	"strings"
	"testing"

	"github.com/latchhq/latch/token"
)

// A reporter's source often quotes the leaked line: the secret in it must
// not reach the owner's mail or the audit trail.
func TestCleanSourceRedactsCredentials(t *testing.T) {
	tok, err := token.Generate(token.Personal)
	if err != nil {
		t.Fatal(err)
	}
	got := cleanSource("https://example.com/repo/blob/main/.env line 3: LATCH_TOKEN=" + tok + " \x00end")
	if strings.Contains(got, tok) || strings.Contains(got, tok[5:30]) {
		t.Fatalf("secret kept in %q", got)
	}
	if !strings.Contains(got, "line 3") || !strings.Contains(got, tok[len(tok)-4:]) || strings.ContainsRune(got, 0) {
		t.Fatalf("cleaned source %q lost its context or kept a control character", got)
	}
}
