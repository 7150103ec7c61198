package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Blob is a file content object added by a push.
type Blob struct {
	ID   string // object id
	Size int64  // bytes
	// Path is one path the blob was found at in the pushed trees (relative
	// to the repository root); empty when a ref points at the blob itself.
	Path string
}

// Command returns git run on the push's repository in a clean environment
// plus ObjectEnv, so that in pre-receive it sees the pushed, still
// quarantined objects. args follow `git --git-dir=RepoDir`. The command is
// stopped (SIGTERM, then SIGKILL) when ctx is cancelled.
func (p *Push) Command(ctx context.Context, args ...string) (*exec.Cmd, error) {
	git, err := gitPath()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, git, append([]string{"--git-dir=" + p.RepoDir}, args...)...)
	cmd.Dir = p.RepoDir
	cmd.Env = append(baseEnv(p.RepoDir), p.ObjectEnv...)
	cmd.WaitDelay = killGrace
	configureProcess(cmd)
	return cmd, nil
}

// NewBlobs lists the blobs the push adds: those reachable from the new ref
// values and from no ref the repository had before the push
// (`git rev-list --objects <new>... --not --all`, blobs kept by
// `git cat-file --batch-check`). Each blob is listed once. It streams; stop
// the iteration early to stop git. A failure is yielded last, with a zero
// Blob.
//
// In pre-receive (where a push is scanned, before it is accepted) the
// quarantined objects are read through ObjectEnv; in post-receive the refs
// the push updated are measured against their old values instead.
func (p *Push) NewBlobs(ctx context.Context) iter.Seq2[Blob, error] {
	return func(yield func(Blob, error) bool) {
		stopped := false
		err := p.walkBlobs(ctx, false, func(b Blob, _ io.Reader) error {
			if !yield(b, nil) {
				stopped = true
				return errStop
			}
			return nil
		})
		if err != nil && !stopped {
			yield(Blob{}, err)
		}
	}
}

// ScanBlobs calls fn with each blob NewBlobs lists and a reader of its
// content (valid only during the call; fn need not read it all). It stops at
// the first error fn returns and returns it. Content is streamed by one
// `git cat-file --batch`, never held whole.
func (p *Push) ScanBlobs(ctx context.Context, fn func(b Blob, content io.Reader) error) error {
	return p.walkBlobs(ctx, true, fn)
}

var errStop = errors.New("stop")

// walkBlobs runs rev-list | cat-file and calls fn for each blob.
func (p *Push) walkBlobs(ctx context.Context, content bool, fn func(Blob, io.Reader) error) (err error) {
	var in strings.Builder
	for _, u := range p.Updates {
		if !u.IsDelete() {
			in.WriteString(u.New + "\n")
		}
		if p.hook == HookPostReceive && !u.IsCreate() {
			in.WriteString("^" + u.Old + "\n")
		}
	}
	if in.Len() == 0 {
		return nil
	}
	args := []string{"rev-list", "--objects", "--filter=object:type=blob", "--stdin", "--not"}
	if p.hook == HookPostReceive {
		// The updated refs (and HEAD, which may name one) already hold the
		// new values: leave them out of --all; their old values are
		// excluded through stdin above.
		args = append(args, "--exclude=HEAD")
		for _, u := range p.Updates {
			args = append(args, "--exclude="+u.Ref)
		}
	}
	args = append(args, "--all")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	revList, err := p.Command(ctx, args...)
	if err != nil {
		return err
	}
	format := "%(objectname) %(objecttype) %(objectsize) %(rest)"
	batch := "--batch-check=" + format
	if content {
		batch = "--batch=" + format
	}
	catFile, err := p.Command(ctx, "cat-file", batch)
	if err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("gitrepo: new blobs: %w", err)
	}
	revErr := &tailWriter{max: 4 << 10}
	catErr := &tailWriter{max: 4 << 10}
	revList.Stdin = strings.NewReader(in.String())
	revList.Stdout = pw
	revList.Stderr = revErr
	catFile.Stdin = pr
	catFile.Stderr = catErr
	out, err := catFile.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("gitrepo: new blobs: %w", err)
	}
	if err := catFile.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("gitrepo: new blobs: cat-file: %w", err)
	}
	pr.Close()
	if err := revList.Start(); err != nil {
		pw.Close()
		cancel()
		catFile.Wait()
		return fmt.Errorf("gitrepo: new blobs: rev-list: %w", err)
	}
	pw.Close()

	fnErr := readBatch(bufio.NewReaderSize(out, 64<<10), content, fn)
	if fnErr != nil {
		cancel()
		io.Copy(io.Discard, out)
	}
	catWait := catFile.Wait()
	revWait := revList.Wait()
	switch {
	case fnErr != nil:
		return fnErr
	case revWait == nil && catWait == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("gitrepo: new blobs: %w", ctx.Err())
	case revWait != nil:
		return &GitError{Service: "git-rev-list", ExitCode: exitCode(revWait), Stderr: revErr.String(), Err: revWait}
	default:
		return &GitError{Service: "git-cat-file", ExitCode: exitCode(catWait), Stderr: catErr.String(), Err: catWait}
	}
}

// readBatch parses cat-file --batch(-check) output, calling fn for blobs.
func readBatch(br *bufio.Reader, content bool, fn func(Blob, io.Reader) error) error {
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gitrepo: new blobs: reading cat-file: %w", err)
		}
		line = strings.TrimSuffix(line, "\n")
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 {
			return fmt.Errorf("gitrepo: new blobs: cat-file: %q", line)
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("gitrepo: new blobs: cat-file: %q", line)
		}
		b := Blob{ID: f[0], Size: size}
		if len(f) == 4 {
			b.Path = f[3]
		}
		var body io.Reader = bytes.NewReader(nil)
		var lr *io.LimitedReader
		if content {
			lr = &io.LimitedReader{R: br, N: size}
			body = lr
		}
		if f[1] == "blob" {
			if err := fn(b, body); err != nil {
				return err
			}
		}
		if content {
			if _, err := io.Copy(io.Discard, lr); err != nil {
				return fmt.Errorf("gitrepo: new blobs: reading cat-file: %w", err)
			}
			if c, err := br.ReadByte(); err != nil || c != '\n' {
				return fmt.Errorf("gitrepo: new blobs: cat-file: missing object terminator")
			}
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
