package leaks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/scan"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/token"
)

// AllowOption is the push option that lets one live credential through:
// `git push -o latch-allow-secret={id}` (several ids may be given, by
// repeating the option or separated by commas).
const AllowOption = "latch-allow-secret"

// Push protection limits.
const (
	// maxShown is how many findings a refusal or warning lists.
	maxShown = 5
	// wholeBlob is the size up to which a blob is read whole into a reused
	// buffer (one per worker) and scanned in one call; larger blobs are
	// streamed.
	wholeBlob = 4 << 20
	// commitLookup bounds the time spent naming the commits that introduce
	// the blocking blobs.
	commitLookup = 10 * time.Second
)

// pushFinding is one latch credential found in a pushed blob.
type pushFinding struct {
	blob   gitrepo.Blob
	line   int
	secret string
	kind   token.Kind
	state  *backend.CredentialState
	commit string // the commit introducing the blob, when found
	// inMessage is set when the credential is in a commit or tag message,
	// blob then naming that object.
	inMessage bool
}

func (f *pushFinding) where() string {
	path := f.blob.Path
	if path == "" {
		path = "blob " + f.blob.ID
	}
	s := fmt.Sprintf("%s:%d", path, f.line)
	if f.commit != "" {
		s = "commit " + short(f.commit) + ", " + s
	}
	return s
}

func (f *pushFinding) describe() string {
	return fmt.Sprintf("%s: %s %s (id %s)", f.where(), kindName(f.kind), token.Redact(f.secret), f.state.ID)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func kindName(k token.Kind) string {
	switch k {
	case token.Personal:
		return "personal access token"
	case token.Repository:
		return "project or repository access token"
	case token.API:
		return "API token"
	case token.OAuthAccess:
		return "OAuth access token"
	case token.OAuthRefresh:
		return "OAuth refresh token"
	case token.OAuthConsumer:
		return "OAuth consumer secret"
	}
	return "latch credential"
}

// PreReceive implements gitrepo.PushHandler: it scans the blobs the push
// adds for latch credentials and, in block mode, refuses the push when one
// is live and not let through with the AllowOption.
func (s *Service) PreReceive(ctx context.Context, p *gitrepo.Push) error {
	mode := s.pushMode()
	if mode == settings.PushOff {
		return nil
	}
	live, err := s.findLive(ctx, p)
	if err != nil {
		if mode == settings.PushWarn {
			// Warn mode never refuses a push, not even when it cannot scan.
			s.log.Error("push protection: scanning a push", "repo_id", p.RepoID, "err", err)
			p.Say("latch: warning: this push could not be checked for live credentials.")
			return nil
		}
		return err // block mode fails closed
	}
	if len(live) == 0 {
		return nil
	}
	allowed := allowedIDs(p.Options)
	var blocking, bypassed []*pushFinding
	for _, f := range live {
		if allowed[f.state.ID] {
			bypassed = append(bypassed, f)
		} else {
			blocking = append(blocking, f)
		}
	}
	switch {
	case mode == settings.PushWarn:
		shown := append(slices.Clone(blocking), bypassed...)
		s.nameCommits(ctx, p, shown)
		s.warn(p, shown)
		return nil
	case len(blocking) > 0:
		s.nameCommits(ctx, p, blocking)
		s.recordBlocked(ctx, p, blocking)
		return gitrepo.Message(s.refusal(blocking)...)
	}
	s.nameCommits(ctx, p, bypassed)
	s.recordBypassed(ctx, p, bypassed)
	return nil
}

// findLive scans the push and keeps the findings of live credentials.
func (s *Service) findLive(ctx context.Context, p *gitrepo.Push) ([]*pushFinding, error) {
	found, err := s.scanPush(ctx, p)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return s.liveFindings(ctx, found)
}

// PostReceive implements gitrepo.PushHandler; it does nothing.
func (s *Service) PostReceive(context.Context, *gitrepo.Push) {}

// liveFindings keeps the findings whose credential is live, looking each
// distinct secret up once.
func (s *Service) liveFindings(ctx context.Context, found []*pushFinding) ([]*pushFinding, error) {
	states := map[string]*backend.CredentialState{}
	var live []*pushFinding
	for _, f := range found {
		st, ok := states[f.secret]
		if !ok {
			var err error
			if st, err = s.b.CredentialState(ctx, f.secret); err != nil {
				return nil, fmt.Errorf("leaks: checking a pushed credential: %w", err)
			}
			states[f.secret] = st
		}
		if st.Live() {
			f.state = st
			live = append(live, f)
		}
	}
	return live, nil
}

// allowedIDs reads the AllowOption push options.
func allowedIDs(opts []string) map[string]bool {
	m := map[string]bool{}
	for _, o := range opts {
		v, ok := strings.CutPrefix(o, AllowOption+"=")
		if !ok {
			continue
		}
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				m[id] = true
			}
		}
	}
	return m
}

// nameCommits finds, for the first findings shown, the commit of the push
// that introduced their blob: `git log --find-object` over the new commits
// only. A failure leaves the commit unnamed (the ref is named instead).
func (s *Service) nameCommits(ctx context.Context, p *gitrepo.Push, fs []*pushFinding) {
	var tips []string
	for _, u := range p.Updates {
		if !u.IsDelete() {
			tips = append(tips, u.New)
		}
	}
	if len(tips) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, commitLookup)
	defer cancel()
	byBlob := map[string]string{}
	for i, f := range fs {
		if i >= maxShown {
			break
		}
		if f.inMessage {
			continue
		}
		c, ok := byBlob[f.blob.ID]
		if !ok {
			c = s.introducingCommit(ctx, p, f.blob.ID, tips)
			byBlob[f.blob.ID] = c
		}
		f.commit = c
	}
}

func (s *Service) introducingCommit(ctx context.Context, p *gitrepo.Push, blob string, tips []string) string {
	args := append([]string{"log", "--format=%H", "--reverse", "--find-object=" + blob}, tips...)
	args = append(args, "--not", "--all", "--")
	cmd, err := p.Command(ctx, args...)
	if err != nil {
		return ""
	}
	out, err := cmd.Output()
	if err != nil {
		s.log.Warn("push protection: naming the commit of a blob", "repo_id", p.RepoID, "blob", blob, "err", err)
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

// refusal is what the pusher reads when a push is refused.
func (s *Service) refusal(blocking []*pushFinding) []string {
	lines := []string{"Push refused by latch: it adds live latch credentials."}
	lines = append(lines, s.list(blocking)...)
	ids := distinctIDs(blocking)
	lines = append(lines,
		"Each of them gives access to this server to whoever reads the repository. To proceed, either:",
		"  - remove it from every commit of the push (edit the file, then `git commit --amend` or `git rebase -i`), and push again;",
		"  - or revoke it (delete the token, or POST "+s.links.BaseURL+"/rest/latch/1.0/credentials/revoke with",
		`    {"credentials":["<the secret>"]}), and push again: revoked and expired credentials do not block;`,
		"  - or, if it must stay, push again with: git push -o "+AllowOption+"="+strings.Join(ids, ",")+" (audited).",
	)
	return lines
}

// warn tells the pusher about live credentials in warn mode.
func (s *Service) warn(p *gitrepo.Push, live []*pushFinding) {
	lines := []string{"latch: warning: this push adds live latch credentials:"}
	lines = append(lines, s.list(live)...)
	lines = append(lines, "latch: whoever reads the repository can use them: revoke them (delete the tokens, or POST "+
		s.links.BaseURL+"/rest/latch/1.0/credentials/revoke) and remove them from the history.")
	p.Say(lines...)
}

func (s *Service) list(fs []*pushFinding) []string {
	var lines []string
	for i, f := range fs {
		if i == maxShown {
			lines = append(lines, fmt.Sprintf("  … and %d more", len(fs)-maxShown))
			break
		}
		lines = append(lines, "  "+f.describe())
	}
	return lines
}

func distinctIDs(fs []*pushFinding) []string {
	var ids []string
	for _, f := range fs {
		if !slices.Contains(ids, f.state.ID) {
			ids = append(ids, f.state.ID)
		}
	}
	return ids
}

func (s *Service) recordBlocked(ctx context.Context, p *gitrepo.Push, blocking []*pushFinding) {
	e := audit.Actor(p.Principal)
	e.Type, e.Outcome = audit.PushBlocked, audit.Refused
	e.Target = "repo:" + strconv.FormatInt(p.RepoID, 10)
	var parts []string
	for i, f := range blocking {
		if i == maxShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(blocking)-maxShown))
			break
		}
		parts = append(parts, "token:"+f.state.ID+" at "+f.where())
	}
	e.Detail = "live credentials in the push: " + strings.Join(parts, "; ")
	s.audit.Record(ctx, e)
}

func (s *Service) recordBypassed(ctx context.Context, p *gitrepo.Push, bypassed []*pushFinding) {
	seen := map[string]bool{}
	for _, f := range bypassed {
		if seen[f.state.ID] {
			continue
		}
		seen[f.state.ID] = true
		e := audit.Actor(p.Principal)
		e.Type = audit.SecretBypassed
		e.Target = "token:" + f.state.ID
		e.Detail = fmt.Sprintf("live credential pushed with -o %s to repo:%d at %s", AllowOption, p.RepoID, f.where())
		s.audit.Record(ctx, e)
		p.Say(fmt.Sprintf("latch: live credential %s at %s let through by %s; this was recorded in the audit trail.",
			f.state.ID, f.where(), AllowOption))
	}
}

// neutralize returns a copy of data in which no AllowMarker remains (its
// letters upper-cased), so that inline markers cannot silence push
// protection. Positions and line numbers are unchanged.
func neutralize(data []byte) []byte {
	return bytes.ReplaceAll(data, []byte(scan.AllowMarker), []byte(strings.ToUpper(scan.AllowMarker)))
}

// markerReader neutralizes AllowMarker in a stream, markers straddling
// reads included: the last len(AllowMarker)-1 bytes read are held back until
// more arrive.
type markerReader struct {
	r        io.Reader
	buf      []byte // pending bytes are buf[off:end]
	off, end int
	err      error
}

func (m *markerReader) Read(p []byte) (int, error) {
	const keep = len(scan.AllowMarker) - 1
	if m.buf == nil {
		m.buf = make([]byte, 64<<10)
	}
	for m.err == nil && m.end-m.off <= keep {
		if m.off > 0 {
			m.end = copy(m.buf, m.buf[m.off:m.end])
			m.off = 0
		}
		n, err := m.r.Read(m.buf[m.end:])
		neutralizeInPlace(m.buf[max(0, m.end-keep) : m.end+n])
		m.end += n
		m.err = err
	}
	avail := m.end - m.off
	if m.err == nil {
		avail -= keep
	}
	if avail <= 0 {
		return 0, m.err
	}
	n := copy(p, m.buf[m.off:m.off+avail])
	m.off += n
	return n, nil
}

// neutralizeInPlace upper-cases every AllowMarker in b.
func neutralizeInPlace(b []byte) {
	marker := []byte(scan.AllowMarker)
	for i := 0; ; {
		j := bytes.Index(b[i:], marker)
		if j < 0 {
			return
		}
		copy(b[i+j:], strings.ToUpper(scan.AllowMarker))
		i += j + len(marker)
	}
}
