package scan

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/internal/gitpack"
)

// HistoryOptions control ScanHistory.
type HistoryOptions struct {
	Options
	// Since limits the scan to commits not reachable from this revision
	// (the range Since..--all), and skips blobs present in its tree.
	Since string
	// Git is the git binary; "" means "git" from PATH.
	Git string
}

// commit is a commit that introduced at least one blob.
type commit struct {
	hash, author, email string
	date                time.Time
}

// blobJob is a blob to read and scan, with the commit and path that first
// introduced it.
type blobJob struct {
	id   string
	bin  string // id in binary, when known
	path string
	c    *commit
	seq  int64
	data []byte
}

// ScanHistory scans every blob reachable from any ref of the repository at
// dir, each unique blob once. A secret found in several blobs at the same
// path is reported once, with the commit and path that first introduced it;
// Origin.InHEAD tells whether HEAD's tree still holds one of the blobs it
// was found in (at any path).
//
// The whole history is read from the pack files directly (internal/gitpack):
// the trees first, while git rev-list orders the commits, then the blobs,
// scanned in pack order by opt.Workers goroutines while each commit's tree
// is compared with its first parent's in process. A range (opt.Since) is
// usually a small part of the repository: `git log --raw` names its blobs
// and `git cat-file --batch` reads just those. Objects no pack holds (loose,
// in alternates) are read through git cat-file either way.
func (s *Scanner) ScanHistory(ctx context.Context, dir string, opt HistoryOptions) (_ *Result, err error) {
	defer func(caller context.Context) {
		// A git process killed by the cancellation fails in its own words
		// ("not a git repository", "signal: killed"): the cause is the
		// context's.
		if err != nil && caller.Err() != nil && !errors.Is(err, caller.Err()) {
			err = fmt.Errorf("scan: %w", caller.Err())
		}
	}(ctx)
	ctx, cancel := context.WithCancel(ctx) // stops the HEAD listing on an early return
	defer cancel()
	g := &gitRunner{bin: cmp.Or(opt.Git, "git"), dir: dir}
	if _, err := g.output(ctx, "rev-parse", "--git-dir"); err != nil {
		return nil, fmt.Errorf("scan: %s is not a git repository: %w", dir, err)
	}
	cfg := opt.Config
	if cfg == nil {
		var err error
		if cfg, err = loadRootConfig(dir); err != nil {
			return nil, err
		}
		if cfg == nil {
			// A bare repository: the committed allowlist, if any.
			if data, err := g.output(ctx, "cat-file", "blob", "HEAD:"+ConfigFile); err == nil {
				if cfg, err = ParseConfig(data); err != nil {
					return nil, fmt.Errorf("%w (in HEAD:%s)", err, ConfigFile)
				}
			}
		}
	}
	// HEAD's blobs are listed while the history is read.
	head := map[string]bool{}
	headc := make(chan error, 1)
	go func() {
		if _, err := g.output(ctx, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"); err != nil {
			headc <- nil // an unborn HEAD holds nothing
			return
		}
		headc <- g.treeBlobs(ctx, "HEAD", head)
	}()

	res := &Result{}
	var mu sync.Mutex
	rec := recorder{cfg: cfg, head: head, res: res, mu: &mu}
	if opt.Since == "" {
		err = s.scanAll(ctx, g, opt, &rec, headc)
	} else {
		err = s.scanRange(ctx, g, opt, &rec, headc)
	}
	if err != nil {
		return res, err
	}
	res.Findings = dedupeHistory(res.Findings)
	if opt.Since == "" {
		err = g.fillAuthors(ctx, res.Findings)
	}
	return res, err
}

// scanRange scans the commits new since opt.Since with git log and git
// cat-file, once headc has reported.
func (s *Scanner) scanRange(ctx context.Context, g *gitRunner, opt HistoryOptions, rec *recorder, headc <-chan error) error {
	if err := <-headc; err != nil {
		return err
	}
	out, err := g.output(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", opt.Since+"^{commit}")
	if err != nil {
		return fmt.Errorf("scan: unknown revision %q", opt.Since)
	}
	since := strings.TrimSpace(string(out))
	seen := map[string]bool{}
	if err := g.treeBlobs(ctx, since, seen); err != nil {
		return err
	}
	return s.readBlobs(ctx, g, opt.Options, rec, func(send func(blobJob) error) error {
		return g.walk(ctx, logCommand("^"+since), seen, rec, send)
	})
}

// logCommand returns the arguments of the git log that names each blob of
// revs (all refs and then revs) with the commit and path that first
// introduced it, as walkLog parses it.
func logCommand(revs ...string) []string {
	// Every flag that the user's configuration could change is spelled out:
	// log.showRoot=false would hide the root commit's files, color.ui=always
	// and log.showSignature would corrupt the output, and
	// i18n.logOutputEncoding would re-encode names.
	// So would diff.orderFile (the order of a commit's paths) and
	// diff.relative (paths outside the current directory left out).
	return append([]string{"-c", "core.quotepath=off", "log", "--all", "--date-order", "--reverse", "--no-renames",
		"--raw", "--root", "--no-color", "--no-show-signature", "--encoding=UTF-8", "--no-abbrev", "-z",
		"-O/dev/null", "--no-relative",
		"--diff-merges=first-parent", "--format=%x01%H%x00%an%x00%ae%x00%aI"}, revs...)
}

// recorder adds what a history scan finds to its result.
type recorder struct {
	cfg  *Config
	head map[string]bool
	res  *Result
	mu   *sync.Mutex
}

// found records a scanned blob and its findings, made for path "".
func (r *recorder) found(j blobJob, size int64, found []Finding) {
	for i := range found {
		f := &found[i]
		f.Path = j.path
		f.Origin = &Origin{Commit: j.c.hash, Author: j.c.author, Email: j.c.email, Date: j.c.date,
			Blob: j.id, InHEAD: r.head[j.id], seq: j.seq}
	}
	found = r.cfg.Filter(found, "")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Stats.Files++
	r.res.Stats.Bytes += size
	r.res.Findings = append(r.res.Findings, found...)
}

// skipped counts blobs left unscanned (binary, too large, missing).
func (r *recorder) skipped(n int64) {
	r.mu.Lock()
	r.res.Stats.Skipped += n
	r.mu.Unlock()
}

// scanAll scans the whole history. The packs' trees are read first, while
// git rev-list lists the commits; then the history is walked in process
// (walkHistory) while the packs' blobs are scanned, and the blobs the walk
// names that no pack holds are read through git cat-file. Commits are named
// by ID only: ScanHistory asks git for the authors of those with findings.
//
// When the trees do not fit in maxTreeBytes, or the repository replaces
// objects, `git log --raw` walks the history instead, beside the blob scan.
func (s *Scanner) scanAll(ctx context.Context, g *gitRunner, opt HistoryOptions, rec *recorder, headc <-chan error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	packs, err := g.packs(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range packs {
			p.Close()
		}
	}()
	n := 0
	for _, p := range packs {
		n += p.Len()
	}
	type revsResult struct {
		revs     []revision
		replaced bool
		err      error
	}
	revc := make(chan revsResult, 1)
	go func() {
		var r revsResult
		if r.replaced, r.err = g.replacements(ctx); r.err == nil {
			r.revs, r.err = g.revisions(ctx)
		}
		revc <- r
	}()
	trees := newTreeSource(g, min(n/2, presize))
	defer func() {
		cancel() // first: a cat-file left mid-answer exits
		trees.close()
	}()
	inProcess, err := trees.readPacks(ctx, packs, opt.workers())
	if err != nil {
		return err
	}
	rr := <-revc
	if rr.err != nil {
		return rr.err
	}
	// Replacement objects would apply to commits (rev-list reads them) but
	// not to the trees read from the packs: git log reads both alike.
	inProcess = inProcess && !rr.replaced

	// The walk runs beside the blob scan.
	type walkResult struct {
		jobs []blobJob
		err  error
	}
	walkc := make(chan walkResult, 1)
	go func() {
		var r walkResult
		if r.err = <-headc; r.err == nil {
			r.jobs, r.err = walkAll(ctx, g, trees, rr.revs, inProcess, rec, min(n/2, presize))
		}
		if r.err != nil {
			cancel()
		}
		walkc <- r
	}()
	blobs, _ := s.scanPacks(ctx, packs, n, opt)
	wr := <-walkc
	if wr.err != nil {
		return wr.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.record(ctx, g, opt.Options, rec, wr.jobs, blobs)
}

// walkAll names every blob of the history with the commit and path that
// first introduced it, leaving out those the allowlist skips, and counts
// commits and skipped blobs: in process from revs and trees, or with git log
// if not inProcess. size is the room to make for the blobs.
func walkAll(ctx context.Context, g *gitRunner, trees *treeSource, revs []revision, inProcess bool, rec *recorder, size int) ([]blobJob, error) {
	jobs := make([]blobJob, 0, size)
	keep := func(j blobJob) error {
		jobs = append(jobs, j)
		return nil
	}
	if !inProcess {
		trees.drop()
		err := g.walk(ctx, logCommand(), map[string]bool{}, rec, keep) // counts itself
		return jobs, err
	}
	skipped, err := walkHistory(ctx, trees, revs, func(j blobJob) error {
		if rec.cfg.AllowsPath(j.path) {
			return errSkip
		}
		return keep(j)
	})
	trees.drop() // their memory serves the blob scan
	rec.mu.Lock()
	rec.res.Stats.Commits = int64(len(revs))
	rec.res.Stats.Skipped += skipped
	rec.mu.Unlock()
	return jobs, err
}

// record records the blobs of jobs with what scanning the packs found in
// them (blobs, by binary ID), and reads and scans through git cat-file
// those no pack held.
func (s *Scanner) record(ctx context.Context, g *gitRunner, opt Options, rec *recorder, jobs []blobJob, blobs map[string]packedBlob) error {
	var rest []blobJob
	for _, j := range jobs {
		if j.bin == "" {
			bin, _ := hex.DecodeString(j.id)
			j.bin = string(bin)
		}
		b, ok := blobs[j.bin]
		switch {
		case !ok:
			rest = append(rest, j)
		case b.skipped:
			rec.skipped(1)
		default:
			rec.found(j, b.size, b.findings) // each blob is named once
		}
	}
	if len(rest) == 0 {
		return nil
	}
	return s.readBlobs(ctx, g, opt, rec, func(send func(blobJob) error) error {
		for _, j := range rest {
			if err := send(j); err != nil {
				return err
			}
		}
		return nil
	})
}

// packedBlob is what scanPacks learnt of a blob (kept by binary ID).
type packedBlob struct {
	size     int64
	skipped  bool // binary, or over the size limit
	findings []Finding
}

// presize bounds the room made in advance for a repository's objects.
const presize = 1 << 16

// packs opens the repository's pack files. Packs that cannot be opened (for
// instance one a fetch is still writing) are left out: git cat-file reads
// their objects.
func (g *gitRunner) packs(ctx context.Context) ([]*gitpack.Pack, error) {
	out, err := g.output(ctx, "rev-parse", "--git-path", "objects", "--show-object-format")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2 {
		return nil, fmt.Errorf("scan: unexpected git rev-parse output %q", out)
	}
	objects := lines[0]
	if !filepath.IsAbs(objects) {
		objects = filepath.Join(g.dir, objects)
	}
	names, err := filepath.Glob(filepath.Join(objects, "pack", "pack-*.pack"))
	if err != nil {
		return nil, err
	}
	var packs []*gitpack.Pack
	for _, name := range names {
		if p, err := gitpack.Open(name, gitpack.HashSize(lines[1])); err == nil {
			packs = append(packs, p)
		}
	}
	return packs, nil
}

// scanPacks scans every blob of packs, reachable or not, each pack decoded
// and scanned by opt.Workers goroutines. n is about how many objects the
// packs hold. A pack that cannot be read leaves the blobs it did not hand
// over to the caller, and the first such error is returned with the rest.
func (s *Scanner) scanPacks(ctx context.Context, packs []*gitpack.Pack, n int, opt HistoryOptions) (map[string]packedBlob, error) {
	var first error
	blobs := make(map[string]packedBlob, min(n/2, presize))
	var mu sync.Mutex
	opts := gitpack.WalkOptions{Type: gitpack.Blob, MaxSize: opt.maxSize(), Workers: opt.workers(), ReuseBlobData: true}
	for _, p := range packs {
		err := p.Walk(opts, func(o gitpack.Object) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := packedBlob{size: o.Size, skipped: o.Data == nil || IsBinary(o.Data)}
			if !b.skipped {
				b.findings = s.Scan(o.Data, "")
			}
			mu.Lock()
			blobs[string(o.ID)] = b
			mu.Unlock()
			return nil
		})
		if first == nil {
			first = err
		}
	}
	return blobs, first
}

// walk runs git log with args and hands walkLog's blobs to blob, counting
// commits and blobs the allowlist skips.
func (g *gitRunner) walk(ctx context.Context, args []string, seen map[string]bool, rec *recorder, blob func(blobJob) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := g.command(ctx, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("scan: git log: %w", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("scan: starting git log: %w", err)
	}
	n, skipped, err := walkLog(out, seen, func(j blobJob) error {
		if rec.cfg.AllowsPath(j.path) {
			return errSkip
		}
		return blob(j)
	})
	if err != nil {
		cancel()
	}
	io.Copy(io.Discard, out)
	werr := cmd.Wait()
	rec.mu.Lock()
	rec.res.Stats.Commits = n
	rec.res.Stats.Skipped += skipped
	rec.mu.Unlock()
	if err == nil && werr != nil {
		err = fmt.Errorf("scan: git log: %w: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return err
}

// readBlobs reads the blobs that produce sends through long-running
// `git cat-file --batch` processes (one per core, two at most, since Git
// decompresses in one thread per process; blobs dealt in turn) and scans
// them with opt.Workers scanners.
func (s *Scanner) readBlobs(ctx context.Context, g *gitRunner, opt Options, rec *recorder, produce func(send func(blobJob) error) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cats := make([]*catFile, min(2, opt.workers()))
	for i := range cats {
		c, err := g.startCatFile(ctx)
		if err != nil {
			for _, c := range cats[:i] {
				c.in.Close()
				c.cmd.Wait()
			}
			return err
		}
		cats[i] = c
	}

	jobs := make(chan blobJob, 2*opt.workers())
	errc := make(chan error, 1+len(cats))

	// Ask a cat-file for each blob.
	go func() {
		defer func() {
			for _, c := range cats {
				close(c.pending)
				c.in.Close()
			}
		}()
		var n int64
		errc <- produce(func(j blobJob) error {
			c := cats[n%int64(len(cats))]
			n++
			select {
			case c.pending <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			_, err := io.WriteString(c.in, j.id+"\n")
			return err
		})
	}()

	// Read each cat-file's answers in order and hand them to the scanners.
	var readers sync.WaitGroup
	for _, c := range cats {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var err error
			for j := range c.pending {
				if err != nil {
					continue // drain, so that the producer never blocks
				}
				var ok bool
				j.data, ok, err = readBatchBlob(c.out, j.id, opt.maxSize())
				if err != nil {
					err = fmt.Errorf("scan: git cat-file: %w: %s", err, strings.TrimSpace(c.stderr.String()))
					cancel()
					continue
				}
				if !ok {
					rec.skipped(1)
					continue
				}
				jobs <- j
			}
			errc <- err
		}()
	}
	go func() {
		readers.Wait()
		close(jobs)
	}()

	var wg sync.WaitGroup
	for range opt.workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if IsBinary(j.data) {
					rec.skipped(1)
					continue
				}
				rec.found(j, int64(len(j.data)), s.Scan(j.data, ""))
			}
		}()
	}
	wg.Wait()
	// Report the cause, not the cancellation it caused elsewhere.
	var first error
	for range 1 + len(cats) {
		if err := <-errc; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	for _, c := range cats {
		c.in.Close()
		if err := c.cmd.Wait(); err != nil && first == nil {
			first = fmt.Errorf("scan: git cat-file: %w: %s", err, strings.TrimSpace(c.stderr.String()))
		}
	}
	return first
}

// catFile is a running `git cat-file --batch`, with the requests written to
// it and not yet answered.
type catFile struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	stderr  syncBuffer
	pending chan blobJob
}

// syncBuffer is a bytes.Buffer safe for a process's stderr to be written
// to while it is read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (g *gitRunner) startCatFile(ctx context.Context) (*catFile, error) {
	c := &catFile{cmd: g.command(ctx, "cat-file", "--batch"), pending: make(chan blobJob, 4096)}
	c.cmd.Stderr = &c.stderr
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("scan: git cat-file: %w", err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("scan: git cat-file: %w", err)
	}
	c.out = bufio.NewReaderSize(out, 1<<20)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("scan: starting git cat-file: %w", err)
	}
	return c, nil
}

// dedupeHistory keeps, for each secret (fingerprint) and path, the finding
// from the earliest blob, marked InHEAD if any of its blobs is in HEAD.
func dedupeHistory(fs []Finding) []Finding {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Origin.seq, b.Origin.seq), cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Rule.ID, b.Rule.ID))
	})
	type key struct{ fp, path string }
	first := map[key]int{}
	var out []Finding
	for _, f := range fs {
		k := key{f.Fingerprint, f.Path}
		if i, ok := first[k]; ok {
			out[i].Origin.InHEAD = out[i].Origin.InHEAD || f.Origin.InHEAD
			continue
		}
		first[k] = len(out)
		out = append(out, f)
	}
	return out
}

var errSkip = errors.New("skip")

// walkLog parses `git log -z --raw --format=%x01%H%x00%an%x00%ae%x00%aI`
// and calls blob for every regular-file blob not seen before, in order. It
// returns the number of commits and of blobs that blob declined (errSkip).
func walkLog(r io.Reader, seen map[string]bool, blob func(blobJob) error) (commits, skipped int64, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	next := func() (string, error) {
		f, err := br.ReadString(0)
		if err == io.EOF && f != "" {
			err = nil
		}
		return strings.TrimLeft(strings.TrimSuffix(f, "\x00"), "\n"), err
	}
	var cur *commit
	var seq int64
	for {
		f, err := next()
		if err == io.EOF {
			return commits, skipped, nil
		}
		if err != nil {
			return commits, skipped, fmt.Errorf("scan: reading git log: %w", err)
		}
		switch {
		case strings.HasPrefix(f, "\x01"):
			var fields [3]string
			for i := range fields {
				if fields[i], err = next(); err != nil {
					return commits, skipped, fmt.Errorf("scan: reading git log: truncated commit header")
				}
			}
			date, _ := time.Parse(time.RFC3339, fields[2])
			cur = &commit{hash: f[1:], author: fields[0], email: fields[1], date: date}
			commits++
		case strings.HasPrefix(f, ":"):
			// :<old mode> <new mode> <old id> <new id> <status>, then the path.
			p, err := next()
			if err != nil {
				return commits, skipped, fmt.Errorf("scan: reading git log: truncated raw entry")
			}
			meta := strings.Fields(f[1:])
			if len(meta) < 5 || cur == nil {
				return commits, skipped, fmt.Errorf("scan: reading git log: bad raw entry %q", f)
			}
			mode, id := meta[1], meta[3]
			if (mode != "100644" && mode != "100755") || strings.Trim(id, "0") == "" || seen[id] {
				continue
			}
			seen[id] = true
			seq++
			switch err := blob(blobJob{id: id, path: p, c: cur, seq: seq}); {
			case errors.Is(err, errSkip):
				skipped++
			case err != nil:
				return commits, skipped, err
			}
		case f == "":
		default:
			return commits, skipped, fmt.Errorf("scan: reading git log: unexpected %q", f)
		}
	}
}

// readBatchBlob reads one answer of `git cat-file --batch`: the blob's
// content, or ok false if it is larger than max (its content is skipped).
func readBatchBlob(r *bufio.Reader, id string, max int64) (data []byte, ok bool, err error) {
	typ, size, err := readBatchHeader(r, id)
	switch {
	case err != nil || typ == "": // missing: e.g. not fetched in a partial clone
		return nil, false, err
	case typ != "blob" || size > max:
		_, err := r.Discard(int(size) + 1)
		return nil, false, err
	}
	data, err = readBatchContent(r, size)
	return data, err == nil, err
}

// readBatchObject reads one answer of `git cat-file --batch` for id: the
// object's type and content, or type "" if git does not have it.
func readBatchObject(r *bufio.Reader, id string) (typ string, data []byte, err error) {
	typ, size, err := readBatchHeader(r, id)
	if err != nil || typ == "" {
		return "", nil, err
	}
	data, err = readBatchContent(r, size)
	return typ, data, err
}

// readBatchHeader reads the line that starts an answer of `git cat-file
// --batch` for id: the object's type and size, or type "" if git does not
// have it.
func readBatchHeader(r *bufio.Reader, id string) (typ string, size int64, err error) {
	hdr, err := r.ReadString('\n')
	if err != nil {
		return "", 0, err
	}
	f := strings.Fields(hdr)
	if len(f) == 2 && f[0] == id && f[1] == "missing" {
		return "", 0, nil
	}
	if len(f) != 3 || f[0] != id {
		return "", 0, fmt.Errorf("unexpected answer %q for %s", strings.TrimSpace(hdr), id)
	}
	size, err = strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("bad size in %q", strings.TrimSpace(hdr))
	}
	return f[1], size, nil
}

// readBatchContent reads an object's size bytes and the newline after them.
func readBatchContent(r *bufio.Reader, size int64) ([]byte, error) {
	data := make([]byte, size+1)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	return data[:size], nil
}

// gitRunner runs git in one repository.
type gitRunner struct{ bin, dir string }

func (g *gitRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, g.bin, append([]string{"-C", g.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_OPTIONAL_LOCKS=0")
	return cmd
}

func (g *gitRunner) output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := g.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// treeBlobs adds the IDs of the blobs in rev's tree to set.
func (g *gitRunner) treeBlobs(ctx context.Context, rev string, set map[string]bool) error {
	out, err := g.output(ctx, "ls-tree", "-r", "-z", "--full-tree", rev)
	if err != nil {
		return fmt.Errorf("scan: listing %s: %w", rev, err)
	}
	for _, e := range bytes.Split(out, []byte{0}) {
		// <mode> SP <type> SP <id> TAB <path>
		if tab := bytes.IndexByte(e, '\t'); tab > 0 {
			if f := strings.Fields(string(e[:tab])); len(f) == 3 && f[1] == "blob" {
				set[f[2]] = true
			}
		}
	}
	return nil
}
