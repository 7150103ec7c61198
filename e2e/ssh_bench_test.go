package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCloneSSHvsHTTP clones the same repository (about 4 MB of
// incompressible content in 20 commits) with the real git client over SSH
// (OpenSSH, user key) and over HTTP (Basic auth), from one latch server in
// one run.
func BenchmarkCloneSSHvsHTTP(b *testing.B) {
	s := startServer(b)
	g := newGit(b)
	s.createProject(b, "BEN", "Bench")
	s.createRepo(b, "BEN", "big")
	dir := g.initRepo(b)
	buf := make([]byte, 100<<10)
	for c := range 20 {
		for f := range 2 {
			_, _ = rand.Read(buf)
			p := filepath.Join(dir, fmt.Sprintf("d%02d/f%d.txt", c, f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(hex.EncodeToString(buf)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		g.must(b, dir, "add", "-A")
		g.must(b, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d", c))
	}
	g.must(b, dir, "push", "-q", s.gitURLAs("BEN", "big", adminName, s.AdminPassword), "main")
	key := sshKeygen(b, "ed25519", 0, "bench")
	s.addUserKey(b, adminName, s.AdminPassword, key, "")
	gs := s.gitSSH(g, key)

	for _, tc := range []struct {
		name string
		g    *gitClient
		url  string
	}{
		{"ssh", gs, s.sshURL("BEN", "big")},
		// OpenSSH prefers chacha20-poly1305; AES-GCM shows the cipher's share.
		{"ssh-aes128-gcm", g.withEnv("GIT_SSH_COMMAND=ssh -o Ciphers=aes128-gcm@openssh.com " + strings.Join(s.sshOptions(key, ""), " ")), s.sshURL("BEN", "big")},
		{"http", g, s.gitURLAs("BEN", "big", adminName, s.AdminPassword)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			root := b.TempDir()
			for i := 0; b.Loop(); i++ {
				dst := filepath.Join(root, fmt.Sprint(i))
				if out, err := tc.g.run("", "clone", "-q", tc.url, dst); err != nil {
					b.Fatalf("clone: %v\n%s", err, out)
				}
				b.StopTimer()
				os.RemoveAll(dst)
				b.StartTimer()
			}
		})
	}
}
