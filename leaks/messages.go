package leaks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/scan"
)

// maxMessage bounds the commit or tag object read whole for its message;
// larger ones (which git makes only on request) are scanned up to it.
const maxMessage = 1 << 20

// scanMessages scans the messages of the commits a push adds and of the
// annotated tags it points refs at: a credential pasted into a commit
// message is as public as one in a file. Findings name the object and
// "commit message" or "tag message" with the line within the message.
func (s *Service) scanMessages(ctx context.Context, p *gitrepo.Push) ([]*pushFinding, error) {
	var tips []string
	for _, u := range p.Updates {
		if !u.IsDelete() {
			tips = append(tips, u.New)
		}
	}
	if len(tips) == 0 {
		return nil, nil
	}
	// The new commits; the tips themselves are asked too, so that annotated
	// tags (which rev-list peels) are read.
	revList, err := p.Command(ctx, "rev-list", "--stdin", "--not", "--all")
	if err != nil {
		return nil, err
	}
	revList.Stdin = strings.NewReader(strings.Join(tips, "\n") + "\n")
	commits, err := revList.Output()
	if err != nil {
		return nil, fmt.Errorf("leaks: listing the pushed commits: %w", err)
	}
	ids := strings.Fields(string(commits))
	added := map[string]bool{}
	for _, id := range ids {
		added[id] = true
	}
	for _, id := range tips {
		if !added[id] {
			ids = append(ids, id) // a tag, or a commit the repository had
		}
	}
	var out []*pushFinding
	err = catFileBatch(ctx, p, ids, func(br *bufio.Reader) (err error) {
		out, err = s.scanObjectMessages(br, added)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("leaks: reading the pushed commits: %w", err)
	}
	return out, nil
}

// scanObjectMessages reads `git cat-file --batch` answers from r and scans
// the message of each tag and of each commit the push adds (in added): a
// ref pointed at a commit the repository had brings nothing new.
func (s *Service) scanObjectMessages(r *bufio.Reader, added map[string]bool) ([]*pushFinding, error) {
	var out []*pushFinding
	for {
		header, err := r.ReadString('\n')
		if err == io.EOF && header == "" {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		id, typ, size, ok := batchHeader(header)
		if !ok {
			return nil, fmt.Errorf("unexpected cat-file answer %q", strings.TrimSpace(header))
		}
		if typ == "missing" {
			continue
		}
		data := make([]byte, min(size, maxMessage))
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		if _, err := r.Discard(int(size-int64(len(data))) + 1); err != nil { // the rest, and the newline
			return nil, err
		}
		if typ != "tag" && (typ != "commit" || !added[id]) {
			continue
		}
		// The message follows the headers and a blank line; lines are
		// counted from its first.
		i := bytes.Index(data, []byte("\n\n"))
		if i < 0 {
			continue
		}
		msg := data[i+2:]
		if bytes.Contains(msg, []byte(scan.AllowMarker)) {
			msg = neutralize(msg)
		}
		for _, fd := range s.scanner.Scan(msg, "") {
			pf := &pushFinding{blob: gitrepo.Blob{ID: id, Path: "commit message"}, line: fd.Line, secret: fd.Secret, kind: fd.Kind, inMessage: true}
			if typ == "commit" {
				pf.commit = id
			} else {
				pf.blob.Path = "tag " + short(id) + " message"
			}
			out = append(out, pf)
		}
	}
}
