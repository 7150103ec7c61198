// Package sshd serves Git over SSH: git-upload-pack, git-receive-pack and
// git-upload-archive on /{projectkey}/{slug}.git, authenticated by the user
// SSH keys and access keys latch stores, authorized by the same one decision
// as every other transport (backend.GitRepo), with git exec'd in-process
// through gitrepo (no helper process, no internal HTTP call per connection).
//
// It is built on golang.org/x/crypto/ssh directly rather than on
// gliderlabs/ssh. What latch needs is narrow (public-key authentication,
// session channels, exec, env, exit-status) and security-sensitive: the
// authorization must come only from the key the client proved it holds, which
// x/crypto/ssh hands back as the Permissions returned by PublicKeyCallback for
// the key whose signature it verified (CVE-2024-45337; Soft Serve
// GHSA-pchf-49fh-w34r came from deciding on a key merely offered). gliderlabs
// wraps that in a context whose key a handler can confuse with the last one
// offered, adds PTY, agent and port-forwarding machinery latch refuses anyway,
// and another dependency; the plain library keeps every decision visible here.
//
// Anything else — a shell, a PTY, another command, a subsystem, environment
// variables other than GIT_PROTOCOL, port forwarding, a path outside the
// repositories, a user other than git — is refused, with a one-line message
// and a non-zero exit status where the protocol has one.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/internal/clientaddr"
	"github.com/latchhq/latch/sshkey"
	"github.com/latchhq/latch/store"
)

// User is the only SSH user name latch accepts.
const User = "git"

// Extensions recorded on a verified connection's Permissions.
const (
	extKeyID          = "latch-key-id"
	extKeyFingerprint = "latch-key-fingerprint"
	extKeyUser        = "latch-key-user" // the owner's user id; 0 for an access key
)

// Backend is what the server asks of latch's domain.
type Backend interface {
	// KeyPrincipal resolves the principal of a stored key, read now.
	KeyPrincipal(ctx context.Context, id int64, fingerprint string) (*latch.Principal, *store.SSHKey, error)
	// GitRepo is the one access decision for Git.
	GitRepo(ctx context.Context, p *latch.Principal, projectKey, slug string, write bool) (*latch.Repository, error)
}

// KeyFinder finds stored keys by fingerprint.
type KeyFinder interface {
	KeyByFingerprint(ctx context.Context, fingerprint string) (*store.SSHKey, error)
}

// Repos runs git on a repository.
type Repos interface {
	Serve(ctx context.Context, svc gitrepo.Service, id int64, opts gitrepo.ServeOptions) error
}

// Config configures a Server.
type Config struct {
	HostKey ssh.Signer
	Keys    KeyFinder
	Backend Backend
	Repos   Repos
	Log     *slog.Logger
	// Uses records when keys authenticate; nil records nothing.
	Uses *UseTracker
	// HandshakeTimeout bounds the time from accepting a connection to
	// authenticating it. Default 30 s.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the connections being authenticated at once;
	// more are closed at once, so that unauthenticated clients cannot hold
	// the server's memory and CPU. Default 64.
	MaxHandshakes int
	// MaxHandshakesPerSource bounds, once half of the MaxHandshakes slots
	// are taken, the connections of one client address (IPv6 by /64) being
	// authenticated at once; more are closed at once. One client's idle
	// connections then hold at most half of the slots, while a quiet
	// server still takes a burst from many clients behind one NAT or load
	// balancer. Default a quarter of MaxHandshakes.
	MaxHandshakesPerSource int
	// MaxConnsPerKey bounds the authenticated connections one key holds at
	// once; the commands of a connection over it are refused with a message.
	// Default 128 (generous for a build farm sharing one access key).
	MaxConnsPerKey int
	// MaxConnsPerUser bounds the authenticated connections the user keys of
	// one account hold at once, so that many keys do not multiply
	// MaxConnsPerKey; over it, commands are refused with a message.
	// Default 256.
	MaxConnsPerUser int
	// MaxSessionsPerConn bounds the session channels one connection holds
	// open at once, so that one connection cannot run many git commands
	// past the bounds on connections; more are rejected with
	// ResourceShortage and a message. A session counts until the server is
	// done with it. Default 10, as OpenSSH's MaxSessions.
	MaxSessionsPerConn int
	// CheckNetwork, when set, applies the instance's (and the credential's)
	// allowed address ranges to a key's principal and the client address
	// (auth.Authenticator.CheckNetwork).
	CheckNetwork func(p *latch.Principal, addr netip.Addr) error
	// Audit records refused keys; nil records nothing.
	Audit audit.Recorder
}

// Server is the SSH server. Create it with New; it is safe for concurrent
// use.
type Server struct {
	cfg    Config
	config *ssh.ServerConfig

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*ssh.ServerConn]*connState
	closing  bool
	running  sync.WaitGroup // git commands in flight
	baseCtx  context.Context
	cancel   context.CancelFunc
	accepted atomic.Int64
	// handshakes holds a slot per connection being authenticated.
	handshakes chan struct{}
	// perSource counts the connections being authenticated of each client
	// address (clientaddr.Key), under mu; no zero entries.
	perSource map[netip.Addr]int
	// refusedWarnings limits the warnings about connections closed before
	// their handshake to one every refusedWarningEvery.
	refusedWarnings refusedLog
	// perKey and perUser count the authenticated connections of each key
	// and of each user's keys (under mu).
	perKey  map[int64]int
	perUser map[int64]int
}

type connState struct {
	active int // sessions running a command
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.HostKey == nil || cfg.Keys == nil || cfg.Backend == nil || cfg.Repos == nil {
		return nil, errors.New("sshd: HostKey, Keys, Backend and Repos are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = 64
	}
	if cfg.MaxHandshakesPerSource <= 0 {
		cfg.MaxHandshakesPerSource = max(1, cfg.MaxHandshakes/4)
	}
	if cfg.MaxConnsPerKey <= 0 {
		cfg.MaxConnsPerKey = 128
	}
	if cfg.MaxConnsPerUser <= 0 {
		cfg.MaxConnsPerUser = 256
	}
	if cfg.MaxSessionsPerConn <= 0 {
		cfg.MaxSessionsPerConn = 10
	}
	s := &Server{cfg: cfg, lns: map[net.Listener]struct{}{}, conns: map[*ssh.ServerConn]*connState{},
		handshakes: make(chan struct{}, cfg.MaxHandshakes), perSource: map[netip.Addr]int{},
		perKey: map[int64]int{}, perUser: map[int64]int{}}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.config = &ssh.ServerConfig{
		ServerVersion:     "SSH-2.0-latch",
		PublicKeyCallback: s.publicKey,
		BannerCallback: func(c ssh.ConnMetadata) string {
			if c.User() != User {
				return fmt.Sprintf("latch: connect as %s@ (user %q is not accepted).\r\n", User, truncate(c.User(), 64))
			}
			return ""
		},
	}
	s.config.AddHostKey(cfg.HostKey)
	return s, nil
}

// HostKeyFingerprint returns the SHA256 fingerprint of the host key.
func (s *Server) HostKeyFingerprint() string { return sshkey.Fingerprint(s.cfg.HostKey.PublicKey()) }

// publicKey is called for every key a client offers, whether or not it then
// proves it holds the private key. It only says whether the key is known and
// returns, in Permissions, which stored key it is: x/crypto/ssh keeps the
// Permissions of the key whose signature it verified on the connection, and
// the server decides from those alone. Nothing here is remembered elsewhere.
func (s *Server) publicKey(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if c.User() != User {
		return nil, fmt.Errorf("user %q is not accepted", c.User())
	}
	if _, isCert := key.(*ssh.Certificate); isCert {
		return nil, errors.New("certificates are not accepted")
	}
	fp := sshkey.Fingerprint(key)
	ctx, cancel := context.WithTimeout(s.baseCtx, 10*time.Second)
	defer cancel()
	k, err := s.cfg.Keys.KeyByFingerprint(ctx, fp)
	if err != nil {
		if !errors.Is(err, latch.ErrNotFound) {
			s.cfg.Log.Error("ssh: look up key", "err", err)
		}
		return nil, errors.New("unknown key")
	}
	return &ssh.Permissions{Extensions: map[string]string{
		extKeyID:          strconv.FormatInt(k.ID, 10),
		extKeyFingerprint: fp,
		extKeyUser:        strconv.FormatInt(k.UserID, 10),
	}}, nil
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("sshd: server closed")

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.accepted.Add(1)
		go s.handleConn(nc)
	}
}

func (s *Server) handleConn(nc net.Conn) {
	source, ok := s.startHandshake(nc)
	if !ok {
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	s.endHandshake(source)
	if err != nil {
		nc.Close()
		s.cfg.Log.Debug("ssh: handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sc.Close()
		return
	}
	st := &connState{}
	s.conns[sc] = st
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		sc.Close()
	}()

	id, fp, err := verifiedKey(sc.Permissions)
	if err != nil {
		s.cfg.Log.Error("ssh: connection without a verified key", "err", err)
		return
	}
	userID, _ := strconv.ParseInt(sc.Permissions.Extensions[extKeyUser], 10, 64)
	refusal, release := s.count(id, userID)
	defer release()
	// A connection over a bound answers its first command with refusal
	// and is closed; the timer ends one that never asks for anything.
	if refusal != "" {
		s.cfg.Log.Warn("ssh: too many connections; refusing this one", "key_id", id, "user_id", userID,
			"remote", sc.RemoteAddr().String(), "reason", refusal)
		timer := time.AfterFunc(s.cfg.HandshakeTimeout, func() { sc.Close() })
		defer timer.Stop()
	} else if s.cfg.Uses != nil {
		s.cfg.Uses.Used(id, time.Now().UnixMilli())
	}
	addr := remoteAddr(sc.RemoteAddr())
	ctx, cancel := context.WithCancel(audit.WithOrigin(s.baseCtx, audit.Origin{Addr: addr, UserAgent: string(sc.ClientVersion())}))
	defer cancel()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	// sessions counts the session channels open on this connection, each
	// until its goroutine ends; only this loop adds to it, so the check
	// below cannot be raced past.
	var sessions atomic.Int64
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.Prohibited, "latch serves only Git over SSH")
			continue
		}
		if sessions.Load() >= int64(s.cfg.MaxSessionsPerConn) {
			_ = nch.Reject(ssh.ResourceShortage, fmt.Sprintf("latch: at most %d sessions at once on one connection", s.cfg.MaxSessionsPerConn))
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		sessions.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sessions.Add(-1)
			if refusal != "" {
				refuseSession(ch, chReqs, refusal)
				sc.Close()
				return
			}
			s.session(ctx, sc, st, ch, chReqs, id, fp)
		}()
	}
	cancel()
	wg.Wait()
}

// count counts an authenticated connection of key keyID, owned by userID
// (0 for an access key), until release is called. refusal is empty if the
// connection is within the bounds, and otherwise says which one it is over.
func (s *Server) count(keyID, userID int64) (refusal string, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perKey[keyID]++
	if userID != 0 {
		s.perUser[userID]++
	}
	switch {
	case s.perKey[keyID] > s.cfg.MaxConnsPerKey:
		refusal = fmt.Sprintf("latch: this SSH key already has %d connections open; close some and try again.", s.cfg.MaxConnsPerKey)
	case userID != 0 && s.perUser[userID] > s.cfg.MaxConnsPerUser:
		refusal = fmt.Sprintf("latch: your SSH keys already have %d connections open; close some and try again.", s.cfg.MaxConnsPerUser)
	}
	return refusal, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.perKey[keyID]--; s.perKey[keyID] == 0 {
			delete(s.perKey, keyID)
		}
		if userID == 0 {
			return
		}
		if s.perUser[userID]--; s.perUser[userID] == 0 {
			delete(s.perUser, userID)
		}
	}
}

// refuseSession answers a session that may not run a command: it says yes to env,
// exec and the like, so that the client reads msg on standard error rather
// than failing on the request, and exits 1 at the first command.
func refuseSession(ch ssh.Channel, reqs <-chan *ssh.Request, msg string) {
	defer ch.Close()
	for req := range reqs {
		run := req.Type == "exec" || req.Type == "shell" || req.Type == "subsystem"
		reply(req, run || req.Type == "env")
		if run {
			fmt.Fprintln(ch.Stderr(), msg)
			exit(ch, 1)
			return
		}
	}
}

// startHandshake takes a handshake slot for nc and counts it toward its
// client address. It returns the address counted (invalid if none) and
// false when no slot is free or, with half of them taken, the address holds
// MaxHandshakesPerSource already.
func (s *Server) startHandshake(nc net.Conn) (source netip.Addr, ok bool) {
	peer := remoteAddr(nc.RemoteAddr())
	if peer.IsValid() {
		source = clientaddr.Key(peer)
		s.mu.Lock()
		busy := 2*len(s.handshakes) >= cap(s.handshakes)
		if busy && s.perSource[source] >= s.cfg.MaxHandshakesPerSource {
			s.mu.Unlock()
			s.refusedWarnings.warn(s.cfg.Log, "ssh: too many connections authenticating from one address; closing some",
				nc.RemoteAddr())
			return netip.Addr{}, false
		}
		s.perSource[source]++
		s.mu.Unlock()
	}
	select {
	case s.handshakes <- struct{}{}:
		return source, true
	default:
		s.endSource(source)
		s.refusedWarnings.warn(s.cfg.Log, "ssh: too many connections authenticating; closing some", nc.RemoteAddr())
		return netip.Addr{}, false
	}
}

// endHandshake gives back what startHandshake took.
func (s *Server) endHandshake(source netip.Addr) {
	<-s.handshakes
	s.endSource(source)
}

// endSource uncounts a connection of source (none if invalid) being
// authenticated.
func (s *Server) endSource(source netip.Addr) {
	if !source.IsValid() {
		return
	}
	s.mu.Lock()
	if s.perSource[source]--; s.perSource[source] <= 0 {
		delete(s.perSource, source)
	}
	s.mu.Unlock()
}

// refusedWarningEvery is the least time between two warnings about
// connections closed before their handshake: a client that opens
// connections as fast as it can must not flood the log.
const refusedWarningEvery = 10 * time.Second

// refusedLog writes at most one warning every refusedWarningEvery, counting
// the connections closed since the last one.
type refusedLog struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (r *refusedLog) warn(log *slog.Logger, msg string, remote net.Addr) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < refusedWarningEvery {
		r.skipped++
		r.mu.Unlock()
		return
	}
	skipped := r.skipped
	r.last, r.skipped = now, 0
	r.mu.Unlock()
	log.Warn(msg, "remote", remote.String(), "also_closed_since_last_warning", skipped)
}

// verifiedKey reads the stored key recorded on a verified connection.
func verifiedKey(p *ssh.Permissions) (int64, string, error) {
	if p == nil {
		return 0, "", errors.New("no permissions")
	}
	id, err := strconv.ParseInt(p.Extensions[extKeyID], 10, 64)
	fp := p.Extensions[extKeyFingerprint]
	if err != nil || id <= 0 || fp == "" {
		return 0, "", errors.New("no key recorded")
	}
	return id, fp, nil
}

func remoteAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ap, ok := netip.AddrFromSlice(ta.IP); ok {
			return ap.Unmap()
		}
	}
	return netip.Addr{}
}

// session serves one session channel: environment, then one exec (or a
// refused shell or subsystem).
func (s *Server) session(ctx context.Context, sc *ssh.ServerConn, st *connState, ch ssh.Channel, reqs <-chan *ssh.Request, keyID int64, fp string) {
	defer ch.Close()
	var gitProtocol string
	started := false
	done := make(chan struct{})
	for {
		var req *ssh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
		case <-done:
			return
		}
		if !ok {
			if started {
				<-done
			}
			return
		}
		switch {
		case started:
			reply(req, false)
		case req.Type == "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil && kv.Name == "GIT_PROTOCOL" && gitrepo.ValidGitProtocol(kv.Value) {
				gitProtocol = kv.Value
				reply(req, true)
			} else {
				reply(req, false)
			}
		case req.Type == "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				reply(req, false)
				continue
			}
			reply(req, true)
			started = true
			go func() {
				defer close(done)
				// The command counts as running until its exit status is
				// sent, so that Shutdown does not cut it off before.
				if !s.begin(st) {
					fmt.Fprintln(ch.Stderr(), "latch: the server is shutting down; try again in a moment.")
					exit(ch, 1)
					return
				}
				defer s.end(st)
				exit(ch, s.exec(ctx, sc, ch, cmd.Command, gitProtocol, keyID, fp))
			}()
		case req.Type == "shell":
			reply(req, true)
			started = true
			go func() {
				defer close(done)
				s.refuseShell(ctx, ch, keyID, fp)
				exit(ch, 1)
			}()
		case req.Type == "subsystem":
			reply(req, true)
			started = true
			go func() {
				defer close(done)
				fmt.Fprintln(ch.Stderr(), "latch: subsystems are not available: latch serves only Git over SSH.")
				exit(ch, 1)
			}()
		default: // pty-req, x11-req, auth-agent-req@openssh.com, signal, ...
			reply(req, false)
		}
	}
}

func reply(req *ssh.Request, ok bool) {
	if req.WantReply {
		_ = req.Reply(ok, nil)
	}
}

func exit(ch ssh.Channel, code int) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
	_ = ch.CloseWrite()
	_ = ch.Close()
}

func (s *Server) refuseShell(ctx context.Context, ch ssh.Channel, keyID int64, fp string) {
	who := "you"
	if p, k, err := s.cfg.Backend.KeyPrincipal(ctx, keyID, fp); err == nil {
		switch {
		case p.User != nil:
			who = p.User.Name
		default:
			who = fmt.Sprintf("access key %q", k.Label)
		}
	}
	fmt.Fprintf(ch.Stderr(), "latch: hi %s, you have authenticated, but latch does not provide shell access: use git clone ssh://git@HOST/PROJECT/REPOSITORY.git.\n", who)
}

// exec runs one Git command and returns its exit status.
func (s *Server) exec(ctx context.Context, sc *ssh.ServerConn, ch ssh.Channel, command, gitProtocol string, keyID int64, fp string) int {
	stderr := ch.Stderr()
	cmd, err := parseCommand(command)
	if err != nil {
		fmt.Fprintln(stderr, err.Error())
		return 1
	}
	p, key, err := s.cfg.Backend.KeyPrincipal(ctx, keyID, fp)
	if err != nil {
		if errors.Is(err, latch.ErrNotFound) {
			s.refused(ctx, nil, keyID, "key removed")
			fmt.Fprintln(stderr, "latch: this SSH key has been removed.")
		} else if errors.Is(err, latch.ErrUnauthorized) {
			s.refused(ctx, nil, keyID, err.Error())
			fmt.Fprintln(stderr, "latch: "+err.Error())
		} else {
			s.cfg.Log.Error("ssh: resolve key", "key_id", keyID, "err", err)
			fmt.Fprintln(stderr, "latch: an internal error occurred.")
		}
		return 1
	}
	if s.cfg.CheckNetwork != nil {
		addr := remoteAddr(sc.RemoteAddr())
		if err := s.cfg.CheckNetwork(p, addr); err != nil {
			s.refused(ctx, p, keyID, "used from outside its allowed address ranges")
			fmt.Fprintf(stderr, "latch: this SSH key may not be used from %s.\n", addr)
			return 1
		}
	}
	write := cmd.service == gitrepo.ReceivePack
	repo, err := s.cfg.Backend.GitRepo(ctx, p, cmd.projectKey, cmd.slug, write)
	if err != nil {
		var d *backend.Denied
		switch {
		case errors.Is(err, latch.ErrNotFound):
			fmt.Fprintln(stderr, "latch: Repository not found.")
		case errors.As(err, &d):
			fmt.Fprintln(stderr, denyMessage(p, key, cmd))
		default:
			s.cfg.Log.Error("ssh: authorize", "key_id", keyID, "err", err)
			fmt.Fprintln(stderr, "latch: an internal error occurred.")
		}
		return 1
	}
	err = s.cfg.Repos.Serve(ctx, cmd.service, repo.ID, gitrepo.ServeOptions{
		Stdin: ch, Stdout: ch, Stderr: stderr, GitProtocol: gitProtocol, Principal: p,
		ClientAddr: remoteAddr(sc.RemoteAddr()),
	})
	if err != nil {
		if errors.Is(err, gitrepo.ErrBusy) {
			fmt.Fprintln(stderr, "latch: the server is busy: too many clones, fetches and pushes are running at once. Try again in a moment.")
			return 1
		}
		var ge *gitrepo.GitError
		if errors.As(err, &ge) {
			if ge.ExitCode > 0 {
				return ge.ExitCode
			}
			return 128
		}
		if ctx.Err() == nil && !errors.Is(err, io.EOF) {
			s.cfg.Log.Warn("ssh: git", "service", string(cmd.service), "repo_id", repo.ID, "err", err)
		}
		return 128
	}
	return 0
}

// denyMessage explains a refused push in one line.
func denyMessage(p *latch.Principal, key *store.SSHKey, cmd *gitCommand) string {
	repo := strings.ToUpper(cmd.projectKey) + "/" + cmd.slug
	if p.Credential == latch.CredAccessKey {
		return fmt.Sprintf("latch: access key %q is read-only on %s: pushing needs REPO_WRITE.", key.Label, repo)
	}
	name := "you"
	if p.User != nil {
		name = p.User.Name
	}
	return fmt.Sprintf("latch: %s may read but not push to %s: pushing needs REPO_WRITE.", name, repo)
}

// begin registers a running command unless the server is shutting down.
func (s *Server) begin(st *connState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	st.active++
	s.running.Add(1)
	return true
}

func (s *Server) end(st *connState) {
	s.mu.Lock()
	st.active--
	s.mu.Unlock()
	s.running.Done()
}

// Shutdown stops accepting connections, closes idle ones, and waits for
// running Git commands to finish (until ctx is done, when it closes every
// connection and stops git), then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.lns {
		ln.Close()
	}
	for sc, st := range s.conns {
		if st.active == 0 {
			sc.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return err
}

// Close closes the listeners and every connection at once, stopping git.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.lns {
		ln.Close()
	}
	for sc := range s.conns {
		sc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	return nil
}

// refused records a refused key in the audit trail and the log.
func (s *Server) refused(ctx context.Context, p *latch.Principal, keyID int64, reason string) {
	id := strconv.FormatInt(keyID, 10)
	s.cfg.Log.Info("ssh: key refused", "key_id", keyID, "reason", reason, "address", audit.OriginFrom(ctx).Addr.String())
	if s.cfg.Audit == nil {
		return
	}
	e := audit.Actor(p)
	e.Type, e.CredentialKind, e.CredentialID = audit.KeyRefused, "ssh-key", id
	e.Target, e.Outcome, e.Detail = "sshkey:"+id, audit.Refused, reason
	s.cfg.Audit.Record(ctx, e)
}
