package leaks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/leaks"
	"github.com/latchhq/latch/token"
)

func setMode(t testing.TB, e *env, mode string) {
	t.Helper()
	if _, _, err := e.policy.Update(context.Background(), []byte(`{"scanning":{"pushProtection":"`+mode+`"}}`)); err != nil {
		t.Fatal(err)
	}
}

func TestPushProtection(t *testing.T) {
	e := newEnv(t)
	live := e.createToken(t, e.alice, "leaky")
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	base := commit(t, wt, map[string][]byte{"README.md": []byte("hello\n")}, "base")
	mustGit(t, wt, "push", "--quiet", srv.url, "main")

	leak := commit(t, wt, map[string][]byte{"config/app.env": []byte("# settings\nUSER=alice\nTOKEN=" + live.Secret + "\n")}, "add config")
	// Removing it again later in the same push does not clean the history.
	commit(t, wt, map[string][]byte{"config/app.env": []byte("# settings\nUSER=alice\n")}, "remove token")
	tip := mustGit(t, wt, "rev-parse", "HEAD")

	t.Run("blocked", func(t *testing.T) {
		out, err := git(wt, "push", srv.url, "main")
		if err == nil {
			t.Fatalf("push with a live token accepted:\n%s", out)
		}
		t.Logf("git push:\n%s", out)
		for _, want := range []string{
			"Push refused by latch", "commit " + leak[:12], "config/app.env:3", "id " + live.ID,
			"latp_…" + live.Secret[len(live.Secret)-4:], "remove it", "revoke", baseURL + "/rest/latch/1.0/credentials/revoke",
			"git push -o latch-allow-secret=" + live.ID,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("refusal lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, live.Secret) {
			t.Errorf("the refusal shows the whole secret:\n%s", out)
		}
		if got := srv.ref(t, "refs/heads/main"); got != base {
			t.Errorf("main = %s, want unchanged %s", got, base)
		}
		evs := e.audit.ofType(audit.PushBlocked)
		if len(evs) != 1 || evs[0].ActorName != "alice" || evs[0].Outcome != audit.Refused ||
			!strings.Contains(evs[0].Detail, "token:"+live.ID) || !strings.Contains(evs[0].Detail, "config/app.env:3") {
			t.Errorf("push.blocked events: %+v", evs)
		}
	})

	t.Run("allow marker does not bypass", func(t *testing.T) {
		wt2 := newWorktree(t)
		mustGit(t, wt2, "pull", "--quiet", srv.url, "main")
		commit(t, wt2, map[string][]byte{"x.txt": []byte("t = " + live.Secret + " # latch:allow\n")}, "marked")
		if out, err := git(wt2, "push", srv.url, "main"); err == nil || !strings.Contains(out, "x.txt:1") {
			t.Fatalf("a latch:allow marker let a live token through: %v\n%s", err, out)
		}
	})

	t.Run("other option ids do not bypass", func(t *testing.T) {
		if out, err := git(wt, "push", "-o", "latch-allow-secret=999999999999", "-o", "ci.skip", srv.url, "main"); err == nil {
			t.Fatalf("accepted:\n%s", out)
		}
	})

	t.Run("bypassed", func(t *testing.T) {
		out, err := git(wt, "push", "-o", "latch-allow-secret="+live.ID, srv.url, "main")
		if err != nil {
			t.Fatalf("bypass refused: %v\n%s", err, out)
		}
		if !strings.Contains(out, "let through by latch-allow-secret") || !strings.Contains(out, live.ID) {
			t.Errorf("no bypass notice:\n%s", out)
		}
		if got := srv.ref(t, "refs/heads/main"); got != tip {
			t.Errorf("main = %s, want %s", got, tip)
		}
		evs := e.audit.ofType(audit.SecretBypassed)
		if len(evs) != 1 || evs[0].ActorName != "alice" || evs[0].Target != "token:"+live.ID ||
			!strings.Contains(evs[0].Detail, "config/app.env:3") {
			t.Errorf("bypass events: %+v", evs)
		}
	})

	t.Run("already pushed blobs are not scanned again", func(t *testing.T) {
		// The token is in the repository now; a push that does not add it
		// again passes.
		commit(t, wt, map[string][]byte{"more.txt": []byte("more\n")}, "more")
		if out, err := git(wt, "push", srv.url, "main"); err != nil {
			t.Fatalf("refused: %v\n%s", err, out)
		}
	})
}

func TestPushProtectionNotLive(t *testing.T) {
	e := newEnv(t)
	revoked := e.createToken(t, e.alice, "revoked")
	if err := e.b.DeleteToken(context.Background(), e.alice, backend.TokenOwnerRef{UserSlug: "alice"}, revoked.ID); err != nil {
		t.Fatal(err)
	}
	expired := e.plantToken(t, e.alice.User, "100000000009", time.Now().Add(-time.Second).UnixMilli())
	unknown, _ := token.Generate(token.Personal)
	live := e.createToken(t, e.alice, "live")
	wrongSum := live.Secret[:len(live.Secret)-1] + flip(live.Secret[len(live.Secret)-1])

	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	commit(t, wt, map[string][]byte{
		"revoked.txt": []byte(revoked.Secret), "expired.txt": []byte(expired),
		"unknown.txt": []byte(unknown), "checksum.txt": []byte(wrongSum),
	}, "dead credentials")
	out, err := git(wt, "push", srv.url, "main")
	if err != nil {
		t.Fatalf("revoked, expired and unknown credentials blocked the push: %v\n%s", err, out)
	}
	if strings.Contains(out, "latch") {
		t.Errorf("unexpected notice:\n%s", out)
	}
}

func TestPushProtectionModes(t *testing.T) {
	e := newEnv(t)
	live := e.createToken(t, e.alice, "live")
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)

	setMode(t, e, "warn")
	c := commit(t, wt, map[string][]byte{"a/b.go": []byte("package b\n\nconst tok = \"" + live.Secret + "\"\n")}, "warned")
	out, err := git(wt, "push", srv.url, "main")
	if err != nil {
		t.Fatalf("warn mode refused: %v\n%s", err, out)
	}
	for _, want := range []string{"warning", "a/b.go:3", "commit " + c[:12], live.ID, "revoke"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning lacks %q:\n%s", want, out)
		}
	}
	if n := len(e.audit.ofType(audit.PushBlocked)); n != 0 {
		t.Errorf("warn mode recorded %d blocked pushes", n)
	}

	setMode(t, e, "off")
	commit(t, wt, map[string][]byte{"c.txt": []byte(live.Secret)}, "unchecked")
	out, err = git(wt, "push", srv.url, "main")
	if err != nil || strings.Contains(out, "latch") {
		t.Fatalf("off mode: %v\n%s", err, out)
	}

	setMode(t, e, "block")
	commit(t, wt, map[string][]byte{"d.txt": []byte(fmt.Sprintf("%s\n%s\n", live.Secret, live.Secret))}, "blocked")
	if out, err := git(wt, "push", srv.url, "main"); err == nil || !strings.Contains(out, "d.txt:1") || !strings.Contains(out, "d.txt:2") {
		t.Fatalf("block mode: %v\n%s", err, out)
	}
}

// A push of many refs and blobs with several live tokens lists at most five
// and says how many more.
func TestPushProtectionManyFindings(t *testing.T) {
	e := newEnv(t)
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	files := map[string][]byte{}
	for i := range 8 {
		v := e.createToken(t, e.alice, fmt.Sprintf("t%d", i))
		files[fmt.Sprintf("f%d.txt", i)] = []byte(v.Secret)
	}
	commit(t, wt, files, "many")
	mustGit(t, wt, "branch", "other")
	out, err := git(wt, "push", srv.url, "main", "other")
	if err == nil {
		t.Fatalf("accepted:\n%s", out)
	}
	if !strings.Contains(out, "and 3 more") || strings.Count(out, "personal access token") != 5 {
		t.Errorf("refusal:\n%s", out)
	}
}

// Blobs over the whole-read size are streamed; a token at their end, behind
// an allow marker, is still found at the right line. Many small blobs are
// split between workers.
func TestPushProtectionLargeAndManyBlobs(t *testing.T) {
	e := newEnv(t)
	live := e.createToken(t, e.alice, "big")
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	big := strings.Repeat("0123456789abcdef\n", 9<<20/17) + "key: " + live.Secret + " # latch:allow\n"
	lines := strings.Count(big, "\n")
	files := map[string][]byte{"big/data.yml": []byte(big)}
	for i := range 300 {
		files[fmt.Sprintf("small/%03d.txt", i)] = []byte(strings.Repeat(fmt.Sprintf("line %d\n", i), 1000))
	}
	commit(t, wt, files, "big")
	out, err := git(wt, "push", srv.url, "main")
	if err == nil || !strings.Contains(out, fmt.Sprintf("big/data.yml:%d", lines)) {
		t.Fatalf("token at the end of a large blob: %v\n%s", err, out)
	}
}

// When the credentials cannot be checked, block mode refuses the push (fails
// closed) and warn mode accepts it with a warning.
func TestPushProtectionFailure(t *testing.T) {
	e := newEnv(t)
	live := e.createToken(t, e.alice, "live")
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	commit(t, wt, map[string][]byte{"a.txt": []byte(live.Secret)}, "a")
	e.st.fail.Store(true)
	if out, err := git(wt, "push", srv.url, "main"); err == nil || strings.Contains(out, live.Secret) {
		t.Fatalf("block mode accepted a push it could not check: %v\n%s", err, out)
	}
	setMode(t, e, "warn")
	out, err := git(wt, "push", srv.url, "main")
	if err != nil || !strings.Contains(out, "could not be checked") {
		t.Fatalf("warn mode: %v\n%s", err, out)
	}
}

// Pushes of more than git's unpack limit (100 objects) stay packed in the
// quarantine and are scanned from the pack: a live token in a small blob is
// found, and a token only in a blob the repository already had (a base git
// adds to complete a thin pack) does not block.
func TestPushProtectionPackedPush(t *testing.T) {
	e := newEnv(t)
	live := e.createToken(t, e.alice, "packed")
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	many := func(tag string) map[string][]byte {
		files := map[string][]byte{}
		for i := range 150 {
			files[fmt.Sprintf("%s/%03d.txt", tag, i)] = []byte(strings.Repeat(fmt.Sprintf("%s line %d\n", tag, i), 50))
		}
		return files
	}
	config := strings.Repeat("# a setting of the service, kept as it is\n", 40)

	// With protection off, the token gets into the repository.
	setMode(t, e, "off")
	files := many("first")
	files["config/app.env"] = []byte(config + "TOKEN=" + live.Secret + "\n")
	commit(t, wt, files, "first")
	mustGit(t, wt, "push", "--quiet", srv.url, "main")
	setMode(t, e, "block")

	// Removing it: the new blob is a delta against the old one, which git
	// adds to the quarantined pack; it is not new and does not block.
	files = many("second")
	files["config/app.env"] = []byte(config + "TOKEN=${TOKEN}\n")
	commit(t, wt, files, "remove token")
	if out, err := git(wt, "push", srv.url, "main"); err != nil {
		t.Fatalf("push removing a token refused: %v\n%s", err, out)
	}

	// A live token in one small blob of a large push, read from the pack.
	files = many("third")
	files["third/050.txt"] = []byte("x\ny\nkey=" + live.Secret + "\n")
	commit(t, wt, files, "third")
	before := leaks.PackedScans.Load()
	out, err := git(wt, "push", srv.url, "main")
	if err == nil || !strings.Contains(out, "third/050.txt:3") || !strings.Contains(out, "id "+live.ID) {
		t.Fatalf("token in a packed push: %v\n%s", err, out)
	}
	if leaks.PackedScans.Load() == before {
		t.Error("the pushed pack was not read directly")
	}
}

// A credential in a commit or an annotated tag message is as public as one in
// a file: both block the push, named by their object and message line.
func TestPushProtectionMessages(t *testing.T) {
	e := newEnv(t)
	live := e.createToken(t, e.alice, "leaky")
	srv := newGitServer(t, e.svc, e.alice)
	wt := newWorktree(t)
	base := commit(t, wt, map[string][]byte{"README.md": []byte("hello\n")}, "base")
	mustGit(t, wt, "push", "--quiet", srv.url, "main")

	t.Run("commit message", func(t *testing.T) {
		leak := commit(t, wt, map[string][]byte{"a.txt": []byte("a\n")}, "deploy\n\nused "+live.Secret+" for it")
		out, err := git(wt, "push", srv.url, "main")
		if err == nil {
			t.Fatalf("a live token in a commit message was accepted:\n%s", out)
		}
		for _, want := range []string{"commit " + leak[:12] + ", commit message:3", "id " + live.ID} {
			if !strings.Contains(out, want) {
				t.Errorf("refusal lacks %q:\n%s", want, out)
			}
		}
		if got := srv.ref(t, "refs/heads/main"); got != base {
			t.Errorf("main = %s, want unchanged %s", got, base)
		}
		mustGit(t, wt, "reset", "--quiet", "--hard", base)
	})

	t.Run("tag message", func(t *testing.T) {
		mustGit(t, wt, "tag", "-a", "v1", "-m", live.Secret)
		tag := mustGit(t, wt, "rev-parse", "v1")
		out, err := git(wt, "push", srv.url, "v1")
		if err == nil {
			t.Fatalf("a live token in a tag message was accepted:\n%s", out)
		}
		if want := "tag " + tag[:12] + " message:1"; !strings.Contains(out, want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
		if out, err := git(wt, "push", "-o", "latch-allow-secret="+live.ID, srv.url, "v1"); err != nil {
			t.Fatalf("bypass refused: %v\n%s", err, out)
		}
	})

	t.Run("a commit the repository has is not scanned again", func(t *testing.T) {
		leak := commit(t, wt, map[string][]byte{"c.txt": []byte("c\n")}, "again "+live.Secret)
		if out, err := git(wt, "push", "-o", "latch-allow-secret="+live.ID, srv.url, "main"); err != nil {
			t.Fatalf("bypass refused: %v\n%s", err, out)
		}
		// A new branch at that commit adds no commit: nothing to refuse.
		if out, err := git(wt, "push", srv.url, leak+":refs/heads/other"); err != nil {
			t.Fatalf("a branch at a commit already pushed was refused: %v\n%s", err, out)
		}
	})

	t.Run("clean messages pass", func(t *testing.T) {
		commit(t, wt, map[string][]byte{"b.txt": []byte("b\n")}, "ordinary change")
		if out, err := git(wt, "push", srv.url, "main"); err != nil {
			t.Fatalf("refused: %v\n%s", err, out)
		}
	})
}
