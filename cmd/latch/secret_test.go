package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestLoadSecretConcurrent starts several nodes on one new data directory at
// once: they must all end up with the same, whole secret.
func TestLoadSecretConcurrent(t *testing.T) {
	for range 20 {
		dir := t.TempDir()
		path := filepath.Join(dir, "secret.key")
		const nodes = 8
		got := make([][]byte, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = loadSecret(path)
			}()
		}
		wg.Wait()
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			if len(got[i]) != 32 || !bytes.Equal(got[i], got[0]) {
				t.Fatalf("node %d got another secret", i)
			}
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("left behind: %v", ents)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", fi.Mode())
		}
	}
}
