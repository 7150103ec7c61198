package gitpack

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkWalk reads every blob of a repacked history of 300 commits, from
// the pack directly (one and two workers) and, side by side, the way history
// scans did before: asking `git cat-file --batch` for each.
func BenchmarkWalk(b *testing.B) {
	dir := history(b, 300)
	git(b, dir, "repack", "-q", "-adf")
	packs, err := Glob(filepath.Join(dir, ".git", "objects"), 20)
	if err != nil {
		b.Fatal(err)
	}
	defer packs[0].Close()
	var ids []string
	var total int64
	packs[0].Walk(WalkOptions{Type: Blob}, func(o Object) error {
		ids = append(ids, o.Hex())
		total += o.Size
		return nil
	})
	for _, workers := range []int{1, 2} {
		b.Run("gitpack/workers="+string(rune('0'+workers)), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				var n atomic.Int64
				if err := packs[0].Walk(WalkOptions{Type: Blob, Workers: workers}, func(o Object) error {
					n.Add(o.Size)
					return nil
				}); err != nil || n.Load() != total {
					b.Fatalf("%v: %d bytes", err, n.Load())
				}
			}
		})
	}
	b.Run("git-cat-file", func(b *testing.B) {
		b.SetBytes(total)
		list := strings.Join(ids, "\n") + "\n"
		for b.Loop() {
			cmd := exec.Command("git", "-C", dir, "cat-file", "--batch")
			cmd.Stdin = strings.NewReader(list)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, bufio.NewReader(out))
			if err != nil || cmd.Wait() != nil || n < total {
				b.Fatalf("%v: %d bytes", err, n)
			}
		}
	})
}
