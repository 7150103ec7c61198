package backend_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// countMail counts the queued messages whose subject names the token.
func countMail(t *testing.T, st store.Store, name string) int {
	t.Helper()
	n := 0
	for id := int64(1); ; id++ {
		m, err := st.MailByID(context.Background(), id)
		if err != nil {
			return n
		}
		if strings.Contains(m.Subject, `"`+name+`"`) {
			n++
		}
	}
}

func TestExpiryRemindersSentOnceWithAControlledClock(t *testing.T) {
	ctx := context.Background()
	b, st, repos, p := newTestBackend(t, "admin")
	b.SetHasher(token.NewHasher([]byte("reminder-test-secret-0123456789ab")))
	mk := func(name string, days int) {
		n := name
		if _, err := b.CreateToken(ctx, p, backend.TokenOwnerRef{UserSlug: "admin"}, backend.TokenInput{Name: &n, ExpiryDays: &days}); err != nil {
			t.Fatal(err)
		}
	}
	mk("month", 30)
	mk("short", 3)
	start := time.Now()
	at := func(d time.Duration) time.Time { return start.Add(d) }
	day := 24 * time.Hour

	steps := []struct {
		when              time.Duration
		month, short      int
		description       string
		concurrentSenders int
	}{
		{0, 0, 0, "nothing is due at creation", 1},
		{22*day + time.Hour, 0, 0, "short already expired, month not yet within a week", 1},
		{23*day + time.Hour, 1, 0, "a week before", 2},
		{23*day + 2*time.Hour, 1, 0, "not again", 2},
		{29*day + time.Hour, 2, 0, "a day before", 3},
		{29*day + 5*time.Hour, 2, 0, "not again", 1},
		{31 * day, 2, 0, "expired: nothing more", 1},
	}
	// The short token: made to last 3 days, it gets the one-day reminder only.
	if _, err := b.SendExpiryReminders(ctx, at(2*day+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countMail(t, st, "short"); n != 1 {
		t.Fatalf("short token: %d reminders a day before expiry, want 1", n)
	}
	for _, s := range steps {
		var wg sync.WaitGroup
		for range s.concurrentSenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.SendExpiryReminders(ctx, at(s.when)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := countMail(t, st, "month"); n != s.month {
			t.Errorf("%s: %d reminders for the 30-day token, want %d", s.description, n, s.month)
		}
		if n := countMail(t, st, "short"); n != 1 {
			t.Errorf("%s: %d reminders for the 3-day token, want 1", s.description, n)
		}
	}
	// A restarted server (a new backend on the same database) sends nothing twice.
	b2 := backend.New(st, repos, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := b2.SendExpiryReminders(ctx, at(29*day+6*time.Hour)); err != nil || n != 0 {
		t.Fatalf("after restart: queued %d, %v", n, err)
	}
}

// TestKeyExpiryReminders: an expiring user key reminds its owner, an
// expiring access key whoever added it, a week and a day before, once each.
func TestKeyExpiryReminders(t *testing.T) {
	ctx := context.Background()
	b, st, _, p := newTestBackend(t, "admin")
	keyText := func(comment string) *string {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := ssh.NewPublicKey(pub)
		s := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + comment
		return &s
	}
	days := func(n int) *int { return &n }
	if _, err := b.AddUserKey(ctx, p, "", backend.KeyInput{Text: keyText("laptop"), ExpiryDays: days(30)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddUserKey(ctx, p, "", backend.KeyInput{Text: keyText("forever")}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(ctx, &latch.Project{Key: "PRJ", Name: "Project"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddAccessKey(ctx, p, backend.KeyResourceRef{ProjectKey: "PRJ"},
		backend.KeyInput{Text: keyText("deploy"), ExpiryDays: days(10), Permission: "PROJECT_READ"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	day := 24 * time.Hour
	for _, s := range []struct {
		when                    time.Duration
		laptop, deploy, forever int
	}{
		{time.Hour, 0, 0, 0},
		{3*day + time.Hour, 0, 1, 0},
		{9*day + time.Hour, 0, 2, 0},
		{9*day + 2*time.Hour, 0, 2, 0},
		{23*day + time.Hour, 1, 2, 0},
		{29*day + time.Hour, 2, 2, 0},
		{40 * day, 2, 2, 0},
	} {
		if _, err := b.SendExpiryReminders(ctx, start.Add(s.when)); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]int{"laptop": s.laptop, "deploy": s.deploy, "forever": s.forever} {
			if n := countMail(t, st, name); n != want {
				t.Errorf("after %v: %d reminders for %s, want %d", s.when, n, name, want)
			}
		}
	}
	found := false
	for id := int64(1); ; id++ {
		m, err := st.MailByID(ctx, id)
		if err != nil {
			break
		}
		if strings.Contains(m.Subject, `"deploy"`) {
			found = true
			if len(m.To) != 1 || m.To[0] != "admin@example.com" || !strings.Contains(m.Subject, "SSH access key") {
				t.Errorf("access key reminder: to %v, subject %q", m.To, m.Subject)
			}
		}
	}
	if !found {
		t.Error("no reminder mail for the access key")
	}
}
