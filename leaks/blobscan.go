package leaks

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/internal/gitpack"
	"github.com/latchhq/latch/scan"
)

// Parallel blob scanning.
const (
	// maxWorkers bounds the git cat-file processes (and scanning
	// goroutines) of one push.
	maxWorkers = 4
	// perWorker is the least content worth another worker: below it the
	// cost of a process outweighs the gain.
	perWorker = 1 << 20
)

// packedScans counts the pushes scanned from their packs (for tests).
var packedScans atomic.Int64

// scanPush scans every blob the push adds with the latch rules, from the
// pushed packs where it can (scanPushPacks), otherwise through git
// (scanNewBlobs), and the messages of the commits and tags it adds
// (scanMessages). Inline allow markers do not apply: a live credential gets
// through only with the audited push option.
func (s *Service) scanPush(ctx context.Context, p *gitrepo.Push) ([]*pushFinding, error) {
	out, ok, err := s.scanPushPacks(ctx, p)
	if err != nil {
		return nil, err
	}
	if !ok {
		if out, err = s.scanNewBlobs(ctx, p); err != nil {
			return nil, err
		}
	} else {
		packedScans.Add(1)
	}
	msgs, err := s.scanMessages(ctx, p)
	if err != nil {
		return nil, err
	}
	out = append(out, msgs...)
	// Report in a stable order: by path, then line.
	slices.SortStableFunc(out, func(a, b *pushFinding) int {
		return cmp.Or(strings.Compare(a.blob.Path, b.blob.Path), cmp.Compare(a.line, b.line))
	})
	return out, nil
}

// scanPushPacks scans the blobs of the packs the push brought, read straight
// from the quarantine on every core, with no listing of trees and no git
// process to decompress them again; blobs over wholeBlob are streamed
// through git cat-file instead. The new blobs are listed (for their paths)
// only when something is found, and findings in blobs the repository already
// had (bases git added to complete a thin pack) are dropped. ok is false when the quarantine holds no pack or
// loose objects too (git unpacks small pushes): the caller then scans the
// new blobs through git.
func (s *Service) scanPushPacks(ctx context.Context, p *gitrepo.Push) (out []*pushFinding, ok bool, err error) {
	if p.QuarantineDir == "" || hasLooseObjects(p.QuarantineDir) {
		return nil, false, nil
	}
	// The hash size comes from the packs' names: no git process.
	packs, err := gitpack.Glob(p.QuarantineDir, 0)
	if err != nil || len(packs) == 0 {
		return nil, false, nil
	}
	defer func() {
		for _, pk := range packs {
			pk.Close()
		}
	}()
	var (
		mu  sync.Mutex
		big []gitrepo.Blob
	)
	// Bases are kept for few deltas in a push; a small cache bounds memory.
	opt := gitpack.WalkOptions{Type: gitpack.Blob, MaxSize: wholeBlob, CacheBytes: 8 << 20, Workers: min(runtime.GOMAXPROCS(0), maxWorkers),
		ReuseBlobData: true} // fn keeps nothing of a blob
	for _, pk := range packs {
		err := pk.Walk(opt, func(o gitpack.Object) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := gitrepo.Blob{ID: o.Hex(), Size: o.Size}
			if o.Data == nil {
				mu.Lock()
				big = append(big, b)
				mu.Unlock()
				return nil
			}
			data := o.Data
			if bytes.Contains(data, []byte(scan.AllowMarker)) {
				data = neutralize(data)
			}
			fs := s.scanner.Scan(data, "")
			if len(fs) == 0 {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			for _, f := range fs {
				out = append(out, &pushFinding{blob: b, line: f.Line, secret: f.Secret, kind: f.Kind})
			}
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("leaks: reading the pushed pack: %w", err)
		}
	}
	if len(big) > 0 {
		fs, err := s.scanBlobs(ctx, p, big)
		if err != nil {
			return nil, false, err
		}
		out = append(out, fs...)
	}
	if len(out) == 0 {
		return nil, true, nil
	}
	added := map[string]gitrepo.Blob{}
	for b, err := range p.NewBlobs(ctx) {
		if err != nil {
			return nil, false, err
		}
		added[b.ID] = b
	}
	kept := out[:0]
	for _, f := range out {
		if b, ok := added[f.blob.ID]; ok {
			f.blob = b
			kept = append(kept, f)
		}
	}
	return kept, true, nil
}

// hasLooseObjects reports whether the object directory dir holds loose
// objects (or cannot be read).
func hasLooseObjects(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if n := e.Name(); e.IsDir() && len(n) == 2 && strings.Trim(n, "0123456789abcdef") == "" {
			if sub, err := os.ReadDir(filepath.Join(dir, n)); err != nil || len(sub) > 0 {
				return true
			}
		}
	}
	return false
}

// scanNewBlobs scans the blobs the push adds as git lists them (gitrepo's
// NewBlobs), split by size between up to one worker per core; each worker
// streams its share through its own `git cat-file --batch`, so that
// inflating and scanning use every core.
func (s *Service) scanNewBlobs(ctx context.Context, p *gitrepo.Push) ([]*pushFinding, error) {
	var blobs []gitrepo.Blob
	var total int64
	for b, err := range p.NewBlobs(ctx) {
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, b)
		total += b.Size
	}
	if len(blobs) == 0 {
		return nil, nil
	}
	n := int(min(int64(runtime.GOMAXPROCS(0)), int64(maxWorkers), int64(len(blobs)), max(1, total/perWorker)))
	groups := partition(blobs, n)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		out      []*pushFinding
		firstErr error
	)
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs, err := s.scanBlobs(ctx, p, g)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			out = append(out, fs...)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// partition splits blobs into n groups of about equal total size, largest
// blob first to the lightest group.
func partition(blobs []gitrepo.Blob, n int) [][]gitrepo.Blob {
	if n <= 1 {
		return [][]gitrepo.Blob{blobs}
	}
	sorted := slices.Clone(blobs)
	slices.SortFunc(sorted, func(a, b gitrepo.Blob) int { return cmp.Compare(b.Size, a.Size) })
	groups := make([][]gitrepo.Blob, n)
	load := make([]int64, n)
	for _, b := range sorted {
		i := 0
		for j := 1; j < n; j++ {
			if load[j] < load[i] {
				i = j
			}
		}
		groups[i] = append(groups[i], b)
		load[i] += b.Size
	}
	return groups
}

// scanBlobs streams blobs through one `git cat-file --batch` and scans each.
func (s *Service) scanBlobs(ctx context.Context, p *gitrepo.Push, blobs []gitrepo.Blob) (out []*pushFinding, err error) {
	ids := make([]string, len(blobs))
	for i, b := range blobs {
		ids[i] = b.ID
	}
	err = catFileBatch(ctx, p, ids, func(br *bufio.Reader) (err error) {
		out, err = s.readBatch(br, blobs)
		return err
	})
	return out, err
}

// catFileBatch runs one `git cat-file --batch` over ids and gives its
// answers to read; the process is stopped when read fails.
func catFileBatch(ctx context.Context, p *gitrepo.Push, ids []string, read func(*bufio.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, err := p.Command(ctx, "cat-file", "--batch=%(objectname) %(objecttype) %(objectsize)")
	if err != nil {
		return err
	}
	cmd.Stdin = strings.NewReader(strings.Join(ids, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("leaks: cat-file: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("leaks: cat-file: %w", err)
	}
	readErr := read(bufio.NewReaderSize(stdout, 64<<10))
	if readErr != nil {
		cancel()
		io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	switch {
	case readErr != nil:
		return readErr
	case waitErr != nil:
		return fmt.Errorf("leaks: git cat-file: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// batchHeader parses the header line of a `git cat-file --batch` answer,
// "ID TYPE SIZE\n"; a missing object's ("ID missing\n") has typ "missing"
// and size 0. ok is false for anything else.
func batchHeader(line string) (id, typ string, size int64, ok bool) {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[1] == "missing":
		return f[0], f[1], 0, true
	case len(f) != 3:
		return "", "", 0, false
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return "", "", 0, false
	}
	return f[0], f[1], size, true
}

// readBatch reads cat-file --batch output for blobs, in order, scanning
// each.
func (s *Service) readBatch(br *bufio.Reader, blobs []gitrepo.Blob) ([]*pushFinding, error) {
	var out []*pushFinding
	var buf []byte
	for _, b := range blobs {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("leaks: reading cat-file: %w", err)
		}
		id, typ, size, ok := batchHeader(line)
		if !ok || id != b.ID || typ != "blob" {
			return nil, fmt.Errorf("leaks: cat-file answered %q for blob %s", strings.TrimSpace(line), b.ID)
		}
		var fs []scan.Finding
		if size <= wholeBlob {
			if int64(cap(buf)) < size {
				buf = make([]byte, size)
			}
			data := buf[:size]
			if _, err := io.ReadFull(br, data); err != nil {
				return nil, fmt.Errorf("leaks: reading blob %s: %w", b.ID, err)
			}
			if bytes.Contains(data, []byte(scan.AllowMarker)) {
				data = neutralize(data)
			}
			fs = s.scanner.Scan(data, b.Path)
		} else {
			lr := &io.LimitedReader{R: br, N: size}
			if fs, err = s.scanner.ScanReader(&markerReader{r: lr}, b.Path); err != nil {
				return nil, fmt.Errorf("leaks: scanning blob %s: %w", b.ID, err)
			}
			if lr.N != 0 {
				return nil, fmt.Errorf("leaks: reading blob %s: %w", b.ID, io.ErrUnexpectedEOF)
			}
		}
		if c, err := br.ReadByte(); err != nil || c != '\n' {
			return nil, fmt.Errorf("leaks: cat-file: missing object terminator after %s", b.ID)
		}
		for _, f := range fs {
			out = append(out, &pushFinding{blob: b, line: f.Line, secret: f.Secret, kind: f.Kind})
		}
	}
	return out, nil
}
