package e2e

// The instance's allowed address ranges bind SSH keys, access keys and user
// keys alike (keys are credentials; only passwords are not bound), and a
// refusal is one clean line from latch rather than a broken pipe.

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sshNetRefusal checks that a refused SSH git command failed with exactly one
// latch line naming the client address and nothing internal.
func sshNetRefusal(t testing.TB, what, out string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s from 127.0.0.1 outside allowedCidrs succeeded\n%s", what, out)
		return
	}
	var latchLines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "latch:") {
			latchLines = append(latchLines, strings.TrimSpace(l))
		}
	}
	const want = "latch: this SSH key may not be used from 127.0.0.1."
	if len(latchLines) != 1 || !strings.HasSuffix(latchLines[0], want) {
		t.Errorf("%s: want exactly one line %q from the server, got %q\n--- git output ---\n%s", what, want, latchLines, out)
	}
	for _, bad := range []string{"internal error", "panic", "broken pipe", "Connection reset", "Connection closed", "early EOF", "protocol error"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s: the refusal is not clean (%q):\n%s", what, bad, out)
		}
	}
	if !strings.Contains(out, "Could not read from remote repository") {
		t.Errorf("%s: git does not report the usual remote failure:\n%s", what, out)
	}
}

func TestSSHAccessKeysHonourAllowedCidrs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	g := newGit(t)
	s.createProject(t, "NETS", "SSH network")
	s.createRepo(t, "NETS", "r")
	head := g.must(t, s.seedRepo(t, g, "NETS", "r"), "rev-parse", "HEAD")
	alice := s.createUser(t, "alice")
	s.grant(t, "NETS/r", alice.Name, "REPO_WRITE")
	access := sshKeygen(t, "ed25519", 0, "ci-reader")
	ak := s.addAccessKey(t, "NETS/r", access, "REPO_READ")
	user := sshKeygen(t, "ed25519", 0, "alice@laptop")
	s.addUserKey(t, alice.Name, alice.Password, user, "")

	clones := func(t *testing.T, allowed bool) {
		t.Helper()
		for _, k := range []struct {
			what string
			key  sshKey
		}{{"clone with the access key", access}, {"clone with the user key", user}} {
			dir, out, err := s.cloneSSH(t, g, k.key, "NETS", "r")
			if allowed {
				if err != nil {
					t.Errorf("%s: %v\n%s", k.what, err, out)
				} else if got := g.must(t, dir, "rev-parse", "HEAD"); got != head {
					t.Errorf("%s: HEAD %s, want %s", k.what, got, head)
				}
				continue
			}
			sshNetRefusal(t, k.what, out, err)
		}
	}

	t.Run("allowed by default", func(t *testing.T) {
		clones(t, true)
	})

	t.Run("outside allowedCidrs: refused", func(t *testing.T) {
		since := nowMillis()
		s.admPut(t, `{"network":{"allowedCidrs":["203.0.113.0/24"]}}`)
		clones(t, false)
		// ls-remote and push are refused the same way.
		out, err := s.gitSSH(g, access).run("", "ls-remote", s.sshURL("NETS", "r"))
		sshNetRefusal(t, "ls-remote with the access key", out, err)
		dir := s.expectClone(t, g, basicGit(alice.Name, alice.Password), "NETS", "r", true) // passwords are not bound
		g.commitFile(t, dir, "n.txt", "n\n", "n")
		out, err = s.gitSSH(g, user).run(dir, "push", "-q", s.sshURL("NETS", "r"), "HEAD:refs/heads/from-ssh")
		sshNetRefusal(t, "push with the user key", out, err)
		if refs := g.lsRemote(t, s.gitURLAs("NETS", "r", adminName, s.AdminPassword)); refs["refs/heads/from-ssh"] != "" {
			t.Errorf("a refused SSH push created refs/heads/from-ssh")
		}

		// Every refusal is audited as sshkey.refused, naming the key, and logged.
		var evs []admEvent
		settingsChanged := 0
		for _, e := range getJSON[page[admEvent]](t, s, admAudit+"?limit=1000&since="+strconv.FormatInt(since, 10), adminName, s.AdminPassword).Values {
			if e.Type == "settings.changed" {
				settingsChanged++
			} else {
				evs = append(evs, e)
			}
		}
		if settingsChanged == 0 {
			t.Errorf("the audit since %d lacks the settings change itself: the probe below is blind", since)
		}
		keyEvents := 0
		for _, e := range evs {
			if strings.Contains(e.Target, strconv.FormatInt(ak.Key.ID, 10)) || e.CredentialID == strconv.FormatInt(ak.Key.ID, 10) || e.Type == "sshkey.refused" {
				keyEvents++
			}
		}
		accessRefusals := 0
		for _, e := range evs {
			if e.Type == "sshkey.refused" && e.CredentialID == strconv.FormatInt(ak.Key.ID, 10) && e.Outcome == "refused" && e.Address == "127.0.0.1" {
				accessRefusals++
			}
		}
		if accessRefusals == 0 {
			t.Errorf("no sshkey.refused event names access key %d with the client address: %v", ak.Key.ID, evs)
		}
		t.Logf("audit events (other than settings.changed) since the ranges changed: %d, naming an SSH key: %d: %v", len(evs), keyEvents, evs)
		var logLines []string
		for _, l := range strings.Split(s.Log(t), "\n") {
			if strings.Contains(l, "ssh") && (strings.Contains(l, "range") || strings.Contains(l, "refus") || strings.Contains(l, "may not")) {
				logLines = append(logLines, l)
			}
		}
		if len(logLines) == 0 {
			t.Errorf("no server log line about the SSH refusals")
		}
	})

	t.Run("inside allowedCidrs again: works", func(t *testing.T) {
		s.admPut(t, `{"network":{"allowedCidrs":["127.0.0.0/8"]}}`)
		clones(t, true)
		s.admPut(t, `{"network":{"allowedCidrs":[]}}`)
		clones(t, true)
	})

	// The REST answer for keys is unchanged by the ranges: the admin's
	// password still manages them from outside.
	st, b := s.asAdmin(t, http.MethodGet, accessKeyPath("NETS/r"), nil)
	mustStatus(t, "list access keys", st, b, http.StatusOK)
}

// TestSSHIdleConnectionsFromOneAddress: idle TCP connections from one
// address (connections that never authenticate, 70 of them, more than the
// 64 handshake slots) hold at most half of the slots, so a clone from
// another address still works, while that address's own clone is refused
// (the connection closed before the handshake) until its idle connections
// go. A burst from one address (many clients behind one NAT) is taken whole
// while the server is not under pressure.
func TestSSHIdleConnectionsFromOneAddress(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	g := newGit(t)
	s.createProject(t, "IDLE", "Idle")
	s.createRepo(t, "IDLE", "repo")
	s.seedRepo(t, g, "IDLE", "repo")
	key := sshKeygen(t, "ed25519", 0, "admin")
	s.addUserKey(t, adminName, s.AdminPassword, key, "")

	idle := func(n int) (held int, closeAll func()) {
		t.Helper()
		var conns []net.Conn
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 5 * time.Second}
		for range n {
			c, err := d.Dial("tcp", s.SSHAddr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			// The server's version line: this connection holds a slot.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 64)); n > 0 && err == nil {
				held++
			}
		}
		return held, func() {
			for _, c := range conns {
				c.Close()
			}
		}
	}
	clone := func(from string) error {
		t.Helper()
		opts := append([]string{"-b", from}, s.sshOptions(key, "")...)
		dir := filepath.Join(t.TempDir(), "clone")
		out, err := g.withEnv("GIT_SSH_COMMAND=ssh "+strings.Join(opts, " ")).run("", "clone", "-q", s.sshURL("IDLE", "repo"), dir)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		return nil
	}

	held, closeAll := idle(70)
	if held != 32 {
		t.Errorf("%d of 70 idle connections from 127.0.0.1 held a slot, want 32 (half of 64)", held)
	}
	if err := clone("127.0.0.2"); err != nil {
		t.Errorf("clone from 127.0.0.2 while 127.0.0.1 held idle connections: %v", err)
	}
	if err := clone("127.0.0.1"); err == nil {
		t.Error("clone from 127.0.0.1 got a handshake slot past its own idle connections")
	}
	closeAll()
	deadline := time.Now().Add(10 * time.Second)
	for err := clone("127.0.0.1"); err != nil; err = clone("127.0.0.1") {
		if time.Now().After(deadline) {
			t.Fatalf("clone from 127.0.0.1 once its idle connections were closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	held, closeAll = idle(24)
	defer closeAll()
	if held != 24 {
		t.Errorf("%d of a burst of 24 connections from one address held a slot on a quiet server, want all", held)
	}
}
