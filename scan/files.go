package scan

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
)

// DefaultMaxSize is the size above which files and blobs are skipped unless
// Options.MaxSize says otherwise.
const DefaultMaxSize = 10 << 20

// Options control ScanPaths and ScanHistory.
type Options struct {
	// MaxSize is the size in bytes above which a file or blob is skipped;
	// 0 means DefaultMaxSize, a negative value no limit.
	MaxSize int64
	// Workers is the number of files or blobs scanned at once; 0 means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Config is the allowlist. When nil, the .latchscan.toml file at the
	// root of each scanned directory (or repository) is used, if present.
	Config *Config
}

func (o Options) maxSize() int64 {
	switch {
	case o.MaxSize == 0:
		return DefaultMaxSize
	case o.MaxSize < 0:
		return 1<<63 - 1
	}
	return o.MaxSize
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Stats counts what a scan read.
type Stats struct {
	Files   int64 // files or blobs scanned
	Bytes   int64 // bytes scanned
	Skipped int64 // files or blobs not scanned: binary, too large, allowlisted, not regular
	Commits int64 // commits walked, for a history scan
}

// Result is the outcome of ScanPaths or ScanHistory.
type Result struct {
	// Findings are sorted by path and position (by commit order first for a
	// history scan).
	Findings []Finding
	Stats    Stats
	// Errors are the files that could not be read; the scan went on
	// without them.
	Errors []error
}

// relPath returns p relative to root, '/'-separated; root "" leaves p as it
// is.
func relPath(root, p string) string {
	if root != "" {
		if r, err := filepath.Rel(root, p); err == nil {
			p = r
		}
	}
	return filepath.ToSlash(p)
}

type fileJob struct {
	path, root string
	cfg        *Config
}

// ScanPaths scans files and directory trees. Directories are walked without
// following symbolic links; .git directories, binary files (a NUL byte in the
// first 8000 bytes), files over the size limit and allowlisted paths are
// skipped. Files are read and scanned by opt.Workers goroutines.
//
// A file or directory reached more than once, through roots that repeat or
// overlap ("dir", "dir/a.txt", "./dir"), is scanned once, the first time it
// is reached in the order of roots: paths are compared cleaned and made
// absolute, without resolving symbolic links.
func (s *Scanner) ScanPaths(ctx context.Context, roots []string, opt Options) (*Result, error) {
	res := &Result{}
	cwd, _ := os.Getwd() // on error, relative paths are compared as they are
	seen := map[string]bool{}
	firstVisit := func(p string) bool {
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		p = filepath.Clean(p)
		if seen[p] {
			return false
		}
		seen[p] = true
		return true
	}
	var mu sync.Mutex
	addErr := func(err error) {
		mu.Lock()
		res.Errors = append(res.Errors, err)
		mu.Unlock()
	}
	skip := func() {
		mu.Lock()
		res.Stats.Skipped++
		mu.Unlock()
	}
	jobs := make(chan fileJob, 256)
	var wg sync.WaitGroup
	for range opt.workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for j := range jobs {
				data, ok, err := readFile(j.path, opt.maxSize(), buf)
				buf = data[:0]
				if err != nil {
					addErr(err)
					continue
				}
				if !ok || IsBinary(data) {
					skip()
					continue
				}
				found := s.Scan(data, j.path)
				if j.cfg != nil {
					found = j.cfg.Filter(found, j.root)
				}
				mu.Lock()
				res.Stats.Files++
				res.Stats.Bytes += int64(len(data))
				res.Findings = append(res.Findings, found...)
				mu.Unlock()
			}
		}()
	}
	var fatal error
	for _, root := range roots {
		if fatal = ctx.Err(); fatal != nil {
			break
		}
		if !firstVisit(root) {
			continue
		}
		st, err := os.Stat(root)
		if err != nil {
			addErr(fmt.Errorf("scan: %w", err))
			continue
		}
		cfg := opt.Config
		if !st.IsDir() {
			if cfg.AllowsPath(relPath("", root)) {
				skip()
				continue
			}
			jobs <- fileJob{path: root, cfg: cfg}
			continue
		}
		if cfg == nil {
			if cfg, err = loadRootConfig(root); err != nil {
				fatal = err
				break
			}
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				addErr(fmt.Errorf("scan: %w", err))
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if p != root && !firstVisit(p) {
				// Reached already through another root.
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			rel := relPath(root, p)
			if d.IsDir() {
				if p != root && (d.Name() == ".git" || cfg.AllowsPath(rel)) {
					skip()
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || cfg.AllowsPath(rel) {
				skip()
				return nil
			}
			select {
			case jobs <- fileJob{path: p, root: root, cfg: cfg}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			fatal = err
			break
		}
	}
	close(jobs)
	wg.Wait()
	if fatal != nil {
		return res, fatal
	}
	slices.SortFunc(res.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Rule.ID, b.Rule.ID))
	})
	return res, nil
}
