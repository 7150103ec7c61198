package mail_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/mail"
	"github.com/latchhq/latch/mail/mailtest"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/sqlstore"
	"github.com/latchhq/latch/sshkey"
	"github.com/latchhq/latch/store"
)

var ctx = context.Background()

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newSender(t *testing.T, st store.Outbox, addr string) *mail.Sender {
	t.Helper()
	s := mail.NewSender(mail.Config{
		Outbox: st, Transport: &mail.SMTP{Addr: addr, Timeout: 5 * time.Second}, From: "latch@example.com", Log: quiet(),
		BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 100 * time.Millisecond,
	})
	s.Start()
	t.Cleanup(func() { s.Close(ctx) })
	return s
}

// TestDeliveredAfterSMTPComesUp queues a message while no SMTP server
// listens: the sender retries with backoff and delivers it once the server
// is up; a sender started later (a restart) finds what is left.
func TestDeliveredAfterSMTPComesUp(t *testing.T) {
	st := openStore(t)
	addr := freeAddr(t)
	m := &store.Mail{To: []string{"alice@example.com"}, Subject: "Grüße from latch", Body: "line one\nline two with a long tail " + strings.Repeat("x", 100) + "\n.\nend", CreatedAt: time.Now().UnixMilli()}
	if err := st.EnqueueMail(ctx, m); err != nil {
		t.Fatal(err)
	}
	s := newSender(t, st, addr)
	// Wait for at least two failed attempts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := st.MailByID(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Attempts >= 2 && got.Status == store.MailPending {
			if !strings.Contains(got.LastError, "connect") {
				t.Errorf("last error %q", got.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retries: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// "Restart": stop this sender, bring SMTP up, start another.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	srv := mailtest.StartAt(t, addr)
	newSender(t, st, addr)
	srv.Wait(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("received %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.Subject != m.Subject || got.Body != m.Body || got.From != "latch@example.com" || len(got.To) != 1 || got.To[0] != "alice@example.com" {
		t.Errorf("received %+v", got)
	}
	if !strings.HasPrefix(got.Header.Get("Message-Id"), "<latch-mail-") {
		t.Errorf("Message-ID %q", got.Header.Get("Message-Id"))
	}
	stored, _ := st.MailByID(ctx, m.ID)
	if stored.Status != store.MailSent {
		t.Errorf("outbox row after delivery: %+v", stored)
	}
}

func authorized(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + comment
}

// TestOneMessagePerAddedKey adds keys through the backend and checks the
// mail each addition sends.
func TestOneMessagePerAddedKey(t *testing.T) {
	st := openStore(t)
	srv := mailtest.Start(t)
	b := backend.New(st, nil, quiet())
	s := newSender(t, st, srv.Addr)
	b.SetMailer(s)
	if _, err := b.Bootstrap(ctx, "admin", "admin-password-1", "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	admin, _ := st.UserByName(ctx, "admin")
	alice := &latch.User{Name: "alice", Slug: "alice", DisplayName: "Alice", Email: "alice@example.com", Active: true, Type: latch.UserNormal}
	if err := st.CreateUser(ctx, alice, ""); err != nil {
		t.Fatal(err)
	}
	prj := &latch.Project{Key: "PRJ", Name: "Project"}
	if err := st.CreateProject(ctx, prj); err != nil {
		t.Fatal(err)
	}
	asAlice := &latch.Principal{User: alice, Credential: latch.CredPassword}
	asAdmin := &latch.Principal{User: admin, Credential: latch.CredPassword}
	from := netip.MustParseAddr("192.0.2.7")

	// Alice adds her own key: one message, to her.
	text := authorized(t, "alice@laptop")
	k, err := b.AddUserKey(ctx, asAlice, "", backend.KeyInput{Text: &text, From: from})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(t, 1, 10*time.Second)
	m := msgs[0]
	parsed, _ := sshkey.Parse(text)
	for _, want := range []string{parsed.Fingerprint, "alice@laptop", "ED25519, 256 bits", "the account of alice (Alice)", "192.0.2.7", "UTC"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("mail body lacks %q:\n%s", want, m.Body)
		}
	}
	if m.To[0] != "alice@example.com" || !strings.Contains(m.Subject, "SSH key added to your account") {
		t.Errorf("mail to %v subject %q", m.To, m.Subject)
	}
	if k.Fingerprint != parsed.Fingerprint {
		t.Errorf("key fingerprint %s, want %s", k.Fingerprint, parsed.Fingerprint)
	}

	// The admin adds a key for alice: one message to each.
	text2 := authorized(t, "alice@desktop")
	if _, err := b.AddUserKey(ctx, asAdmin, "alice", backend.KeyInput{Text: &text2, From: from}); err != nil {
		t.Fatal(err)
	}
	msgs = srv.Wait(t, 3, 10*time.Second)
	to := map[string]string{}
	for _, m := range msgs[1:] {
		to[m.To[0]] = m.Body
	}
	fp2 := mustParse(t, text2).Fingerprint
	if !strings.Contains(to["admin@example.com"], "You added an SSH key to the account of alice") || !strings.Contains(to["admin@example.com"], fp2) {
		t.Errorf("admin's mail:\n%s", to["admin@example.com"])
	}
	if !strings.Contains(to["alice@example.com"], "admin") || !strings.Contains(to["alice@example.com"], "added an SSH key to your account") || !strings.Contains(to["alice@example.com"], fp2) {
		t.Errorf("alice's mail:\n%s", to["alice@example.com"])
	}

	// An access key: one message to the admin who added it; re-adding it
	// with another permission only updates it.
	text3 := authorized(t, "ci")
	for _, perm := range []string{"PROJECT_READ", "PROJECT_WRITE"} {
		if _, err := b.AddAccessKey(ctx, asAdmin, backend.KeyResourceRef{ProjectKey: "PRJ"}, backend.KeyInput{Text: &text3, Permission: perm, From: from}); err != nil {
			t.Fatal(err)
		}
	}
	msgs = srv.Wait(t, 4, 10*time.Second)
	m = msgs[3]
	if m.To[0] != "admin@example.com" || !strings.Contains(m.Body, "project PRJ, with permission PROJECT_READ") || !strings.Contains(m.Body, mustParse(t, text3).Fingerprint) {
		t.Errorf("access key mail to %v:\n%s", m.To, m.Body)
	}
	// A refused key sends nothing.
	if _, err := b.AddUserKey(ctx, asAlice, "", backend.KeyInput{Text: &text3}); err == nil {
		t.Error("an access key was accepted as a personal key")
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(srv.Messages()); n != 4 {
		t.Errorf("received %d messages, want exactly 4 (one per added key and recipient)", n)
	}
}

func mustParse(t *testing.T, text string) *sshkey.Key {
	t.Helper()
	k, err := sshkey.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFormat(t *testing.T) {
	m := &store.Mail{ID: 7, To: []string{"a@example.com"}, Subject: "Hello ✓", Body: "a\n.\nb", CreatedAt: 1700000000000}
	raw := string(mail.Format("latch@example.com", m, time.Now()))
	for _, want := range []string{"From: latch@example.com\r\n", "To: a@example.com\r\n", "Subject: =?utf-8?q?Hello_=E2=9C=93?=\r\n",
		"Message-ID: <latch-mail-7-1700000000000@example.com>\r\n", "Content-Transfer-Encoding: quoted-printable\r\n", "\r\n\r\na\r\n.\r\nb"} {
		if !strings.Contains(raw, want) {
			t.Errorf("formatted message lacks %q:\n%s", want, raw)
		}
	}
}

// fakeTransport accepts every message.
type fakeTransport struct{}

func (fakeTransport) Send(context.Context, string, *store.Mail) error { return nil }

// TestPurge: RunOnce deletes delivered messages older than the retention, at
// most once an hour, and keeps newer ones.
func TestPurge(t *testing.T) {
	st := openStore(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := mail.NewSender(mail.Config{Outbox: st, Transport: fakeTransport{}, Log: quiet(), Retention: 7 * 24 * time.Hour,
		Now: func() time.Time { return now }})
	enqueue := func(age time.Duration) *store.Mail {
		m := &store.Mail{To: []string{"alice@example.com"}, Subject: "s", Body: "b", CreatedAt: now.Add(-age).UnixMilli()}
		if err := st.EnqueueMail(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	exists := func(m *store.Mail) bool {
		_, err := st.MailByID(ctx, m.ID)
		if err != nil && !errors.Is(err, latch.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	old, fresh := enqueue(8*24*time.Hour), enqueue(7*24*time.Hour-10*time.Minute)
	if n, err := s.RunOnce(ctx); err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if exists(old) || !exists(fresh) {
		t.Errorf("after the first run: old kept %v, fresh kept %v; want only fresh", exists(old), exists(fresh))
	}
	// Half an hour later the fresh one is past the retention, but the
	// next purge is not due yet; an hour after the first it is.
	now = now.Add(30 * time.Minute)
	s.RunOnce(ctx)
	if !exists(fresh) {
		t.Error("purged again before an hour passed")
	}
	now = now.Add(31 * time.Minute)
	s.RunOnce(ctx)
	if exists(fresh) {
		t.Error("not purged an hour later")
	}
}

// TestSMTPTLSAndAuth delivers through servers that require authentication:
// over STARTTLS with PLAIN, over implicit TLS with LOGIN (offered alone);
// wrong credentials fail without giving up on the message, and a
// certificate the client does not trust stops the delivery before AUTH.
func TestSMTPTLSAndAuth(t *testing.T) {
	msg := &store.Mail{ID: 1, To: []string{"alice@example.com"}, Subject: "s", Body: "b", CreatedAt: 1}
	for _, c := range []struct {
		name string
		opts mailtest.Options
		mech string
	}{
		{"STARTTLS and PLAIN", mailtest.Options{TLS: true, Username: "latch", Password: "s3cret pass"}, "PLAIN"},
		{"implicit TLS and LOGIN", mailtest.Options{Implicit: true, Username: "latch", Password: "s3cret pass", Mechanisms: []string{"LOGIN"}}, "LOGIN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := mailtest.StartWith(t, c.opts)
			tr := &mail.SMTP{Addr: srv.Addr, ImplicitTLS: c.opts.Implicit, Username: "latch", Password: "s3cret pass",
				TLSConfig: &tls.Config{RootCAs: srv.CertPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
			if err := tr.Send(ctx, "latch@example.com", msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := srv.Messages(); len(got) != 1 || got[0].To[0] != "alice@example.com" {
				t.Errorf("received %+v", got)
			}
			if got := srv.AuthMechanisms(); len(got) != 1 || got[0] != c.mech {
				t.Errorf("authenticated with %v, want %s", got, c.mech)
			}

			tr.Password = "wrong"
			err := tr.Send(ctx, "latch@example.com", msg)
			var pe *mail.PermanentError
			if err == nil || !strings.Contains(err.Error(), "535") || errors.As(err, &pe) {
				t.Errorf("Send with a wrong password = %v, want a 535 that is retried", err)
			}
			tr.Password, tr.Username = "s3cret pass", ""
			if err := tr.Send(ctx, "latch@example.com", msg); err == nil || !strings.Contains(err.Error(), "530") {
				t.Errorf("Send without credentials = %v, want 530", err)
			}
			tr.Username, tr.TLSConfig = "latch", &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if err := tr.Send(ctx, "latch@example.com", msg); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Send to an untrusted certificate = %v", err)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("%d messages delivered, want only the first", n)
			}
		})
	}
}
