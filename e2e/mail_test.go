package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/mail/mailtest"
)

// withSMTP runs latch with --smtp addr.
func withSMTP(addr string) ServerOption {
	return WithArgs("--smtp", addr, "--mail-from", "latch@example.com")
}

// TestMailOnKeyAdded checks that a real SMTP server receives exactly one
// message per added key and recipient, with the key's fingerprint.
func TestMailOnKeyAdded(t *testing.T) {
	smtp := mailtest.Start(t)
	s := startServer(t, withSMTP(smtp.Addr))
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	alice := s.createUser(t, "alice")

	key := sshKeygen(t, "ed25519", 0, "alice@laptop")
	s.addUserKey(t, alice.Name, alice.Password, key, "")
	msgs := smtp.Wait(t, 1, 30*time.Second)
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != alice.Email || m.From != "latch@example.com" {
		t.Errorf("mail from %s to %v", m.From, m.To)
	}
	for _, want := range []string{key.fingerprint(t), "alice@laptop", "ED25519, 256 bits", "the account of alice", "127.0.0.1"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Body)
		}
	}

	// An administrator adds a key for alice: both are told.
	key2 := sshKeygen(t, "ecdsa", 384, "alice@desktop")
	st, b := s.tryAddUserKey(t, adminName, s.AdminPassword, "alice", key2.Pub, "desktop")
	mustStatus(t, "admin adds a key for alice", st, b, 201)
	msgs = smtp.Wait(t, 3, 30*time.Second)
	got := map[string]string{}
	for _, m := range msgs[1:] {
		got[m.To[0]] = m.Body
	}
	for _, to := range []string{"admin@localhost", alice.Email} {
		if !strings.Contains(got[to], key2.fingerprint(t)) || !strings.Contains(got[to], "desktop") || !strings.Contains(got[to], "ECDSA, 384 bits") {
			t.Errorf("mail to %s:\n%s", to, got[to])
		}
	}

	// An access key: the administrator who added it is told where.
	key3 := sshKeygen(t, "ed25519", 0, "ci")
	s.addAccessKey(t, "PRJ/repo", key3, "REPO_READ")
	msgs = smtp.Wait(t, 4, 30*time.Second)
	if m := msgs[3]; m.To[0] != "admin@localhost" || !strings.Contains(m.Body, "repository PRJ/repo, with permission REPO_READ") || !strings.Contains(m.Body, key3.fingerprint(t)) {
		t.Errorf("access key mail to %v:\n%s", m.To, m.Body)
	}
	time.Sleep(time.Second)
	if n := len(smtp.Messages()); n != 4 {
		t.Errorf("received %d messages, want exactly 4", n)
	}
}

// TestMailSurvivesSMTPDowntimeAndRestart adds a key while the SMTP server
// is down, restarts latch, then brings SMTP up: the message still arrives,
// once.
func TestMailSurvivesSMTPDowntimeAndRestart(t *testing.T) {
	addr := freeAddr(t) // nothing listens here yet
	s := startServer(t, withSMTP(addr))
	alice := s.createUser(t, "alice")
	key := sshKeygen(t, "ed25519", 0, "alice@laptop")
	start := time.Now()
	s.addUserKey(t, alice.Name, alice.Password, key, "")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("adding a key took %v with SMTP down: requests must not wait on SMTP", d)
	}
	// Let the first attempt fail.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Log(t), "mail delivery failed; will retry") {
		if time.Now().After(deadline) {
			t.Fatal("no failed delivery attempt logged")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s2 := s.restart(t, withSMTP(addr))
	smtp := mailtest.StartAt(t, addr)
	msgs := smtp.Wait(t, 1, 90*time.Second)
	if !strings.Contains(msgs[0].Body, key.fingerprint(t)) || msgs[0].To[0] != alice.Email {
		t.Errorf("delivered mail to %v:\n%s", msgs[0].To, msgs[0].Body)
	}
	time.Sleep(time.Second)
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("received %d messages, want 1", n)
	}
	_ = s2
}

// TestMailThroughAuthenticatedTLS runs latch against an SMTP server that
// offers STARTTLS with a certificate from its own authority and requires a
// user name and password, given to latch in LATCH_SMTP_USERNAME and
// LATCH_SMTP_PASSWORD: mail arrives, authenticated, and the password never
// reaches the log.
func TestMailThroughAuthenticatedTLS(t *testing.T) {
	t.Parallel()
	password := "smtp-" + randomHex(16)
	smtp := mailtest.StartWith(t, mailtest.Options{TLS: true, Username: "latch-mailer", Password: password})
	s := startServer(t, withSMTP(smtp.Addr), WithoutSSH(), WithEnv("LATCH_SMTP_USERNAME=latch-mailer",
		"LATCH_SMTP_PASSWORD="+password, "SSL_CERT_FILE="+smtp.CAFile))
	s.addSecret(password)
	alice := s.createUser(t, "alice")
	key := sshKeygen(t, "ed25519", 0, "alice@laptop")
	s.addUserKey(t, alice.Name, alice.Password, key, "")
	msgs := smtp.Wait(t, 1, 30*time.Second)
	if m := msgs[0]; len(m.To) != 1 || m.To[0] != alice.Email || !strings.Contains(m.Body, key.fingerprint(t)) {
		t.Errorf("mail to %v:\n%s", m.To, m.Body)
	}
	if got := smtp.AuthMechanisms(); len(got) == 0 || got[0] != "PLAIN" {
		t.Errorf("authenticated with %v, want PLAIN", got)
	}
}
