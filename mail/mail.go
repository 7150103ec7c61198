// Package mail delivers latch's mail through an outbox in the database: the
// code that reports a change writes the message into the outbox in the
// change's own transaction (store.Outbox.EnqueueMail), and a background
// Sender delivers it. A request never waits on SMTP, and no message is lost
// while the SMTP server is down or latch restarts: a message stays in the
// outbox until the SMTP server accepted it, or until it failed permanently
// (a 5xx answer) or ran out of attempts, retried with exponential backoff.
//
// A Sender claims due messages with a lease (store.Outbox.ClaimMail), so that
// a sender that dies mid-delivery leaves its messages to be retried once the
// lease expires, and several senders (one per node) never deliver one message
// twice while a lease runs. Delivery is at least once: a crash between the
// SMTP server's acceptance and the outbox update sends that message again,
// with the same Message-ID.
//
// Without an SMTP server (no --smtp), the LogTransport logs each message's
// recipients and subject, never its body, so that nothing a body may carry
// reaches the log.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/store"
)

// Transport delivers one message.
type Transport interface {
	Send(ctx context.Context, from string, m *store.Mail) error
}

// PermanentError marks a delivery failure that retrying will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// SMTP delivers through an SMTP server with net/smtp, upgrading to TLS with
// STARTTLS when the server offers it, or speaking TLS from the start
// (ImplicitTLS, port 465), and authenticating when Username is set.
type SMTP struct {
	// Addr is HOST:PORT.
	Addr string
	// Hello is the name latch gives in HELO/EHLO; default the host name.
	Hello string
	// Timeout bounds one delivery; default 30 s.
	Timeout time.Duration
	// TLSConfig is used for TLS; default verifies the server as Addr's host.
	TLSConfig *tls.Config
	// ImplicitTLS connects with TLS rather than upgrading with STARTTLS.
	ImplicitTLS bool
	// Username and Password authenticate with AUTH PLAIN or, when the
	// server offers only that, AUTH LOGIN. They are sent only over TLS or
	// to a loopback server.
	Username, Password string
}

// Send delivers m to its recipients.
func (s *SMTP) Send(ctx context.Context, from string, m *store.Mail) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, _ := net.SplitHostPort(s.Addr)
	cfg := s.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	var conn net.Conn
	var err error
	if s.ImplicitTLS {
		conn, err = (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", s.Addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	}
	if err != nil {
		return fmt.Errorf("connect to SMTP server %s: %w", s.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpErr("greeting", err)
	}
	defer c.Close()
	hello := s.Hello
	if hello == "" {
		hello, _ = os.Hostname()
		if hello == "" {
			hello = "localhost"
		}
	}
	if err := c.Hello(hello); err != nil {
		return smtpErr("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.ImplicitTLS {
		if err := c.StartTLS(cfg); err != nil {
			return smtpErr("STARTTLS", err)
		}
	}
	if s.Username != "" {
		if err := s.auth(c, host); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return smtpErr("MAIL FROM", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return smtpErr("RCPT TO", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpErr("DATA", err)
	}
	if _, err := w.Write(Format(from, m, time.Now())); err != nil {
		return smtpErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpErr("end of DATA", err)
	}
	return c.Quit()
}

// auth authenticates c. Its failures are never permanent: wrong or missing
// credentials are a configuration to fix, after which the outbox delivers
// what waited.
func (s *SMTP) auth(c *smtp.Client, host string) error {
	_, tlsOn := c.TLSConnectionState()
	if !tlsOn && !isLoopback(host) {
		return fmt.Errorf("SMTP server %s offers no TLS: refusing to send the SMTP password in the clear", s.Addr)
	}
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return fmt.Errorf("SMTP server %s does not offer AUTH, but an SMTP user name is configured", s.Addr)
	}
	var a smtp.Auth
	switch offered := strings.Fields(strings.ToUpper(mechs)); {
	case slices.Contains(offered, "PLAIN"):
		a = plainAuth{username: s.Username, password: s.Password}
	case slices.Contains(offered, "LOGIN"):
		a = &loginAuth{username: s.Username, password: s.Password}
	default:
		return fmt.Errorf("SMTP server %s offers AUTH %s; latch speaks PLAIN and LOGIN", s.Addr, mechs)
	}
	if err := c.Auth(a); err != nil {
		return fmt.Errorf("SMTP AUTH: %w", err)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plainAuth is AUTH PLAIN (RFC 4616). net/smtp's PlainAuth does the same but
// checks TLS itself, against the name given to smtp.NewClient; auth has
// decided that already.
type plainAuth struct{ username, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected challenge after AUTH PLAIN")
	}
	return nil, nil
}

// loginAuth is AUTH LOGIN, which some servers offer alone: the user name
// and the password, each asked for in turn.
type loginAuth struct {
	username, password string
	step               int
}

func (a *loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (a *loginAuth) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.username), nil
	case 2:
		return []byte(a.password), nil
	}
	return nil, errors.New("unexpected challenge after AUTH LOGIN")
}

// smtpErr wraps an SMTP failure; a 5xx answer is permanent.
func smtpErr(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return &PermanentError{Err: fmt.Errorf("SMTP %s: %w", step, err)}
	}
	return fmt.Errorf("SMTP %s: %w", step, err)
}

// Format renders m as an RFC 5322 message: plain UTF-8 text, quoted-printable,
// with a Message-ID derived from the outbox id so that a message delivered
// twice can be recognised.
func Format(from string, m *store.Mail, now time.Time) []byte {
	var b bytes.Buffer
	domain := "latch"
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" {
		domain = d
	}
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", strings.Join(m.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	created := now
	if m.CreatedAt != 0 {
		created = time.UnixMilli(m.CreatedAt)
	}
	hdr("Date", created.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<latch-mail-%d-%d@%s>", m.ID, m.CreatedAt, domain))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// LogTransport "delivers" by logging recipients and subject, never the body.
type LogTransport struct{ Log *slog.Logger }

// Send logs m.
func (l LogTransport) Send(_ context.Context, from string, m *store.Mail) error {
	l.Log.Info("mail not sent (no --smtp configured)", "mail_id", m.ID, "from", from, "to", strings.Join(m.To, ","),
		"subject", m.Subject, "body_bytes", len(m.Body))
	return nil
}

// Config configures a Sender.
type Config struct {
	Outbox    store.Outbox
	Transport Transport
	From      string
	Log       *slog.Logger
	// Batch is how many messages one claim takes; default 10.
	Batch int
	// Lease is how long a claim lasts before another sender may retry the
	// message; default 5 minutes (longer than one delivery can take).
	Lease time.Duration
	// BackoffBase and BackoffMax bound the wait before a retry: BackoffBase
	// doubled for every failed attempt, at most BackoffMax, with ±20%
	// jitter. Defaults 10 s and 1 h.
	BackoffBase, BackoffMax time.Duration
	// MaxAttempts is how many times a message is tried; default 20 (about
	// 15 hours of retries with the default backoff).
	MaxAttempts int
	// Poll is the longest the sender sleeps without looking at the outbox
	// (mail queued by another node wakes no one here); default 30 s.
	Poll time.Duration
	// Retention is how long sent and failed messages stay in the outbox
	// (they hold addresses and what happened to accounts); default 30 days.
	// They are deleted at most once an hour.
	Retention time.Duration
	// Now replaces the clock, for tests.
	Now func() time.Time
}

// Sender delivers the outbox in the background.
type Sender struct {
	cfg      Config
	token    string
	purgedAt time.Time // when RunOnce last purged; only RunOnce's goroutine uses it
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// NewSender returns a Sender; Start runs it.
func NewSender(cfg Config) *Sender {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Minute
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Hour
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 30 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tok := make([]byte, 12)
	_, _ = rand.Read(tok)
	return &Sender{cfg: cfg, token: hex.EncodeToString(tok), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Wake tells the sender that mail was queued; it never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start runs the sender in the background until Close.
func (s *Sender) Start() { go s.run() }

// Close stops the sender, letting a delivery in progress finish until ctx
// is done. Undelivered messages stay in the outbox for the next start.
func (s *Sender) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sender) run() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
		case <-s.done:
		}
		// Give a delivery in progress a moment, then cut it.
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-s.done:
		}
	}()
	for {
		n, err := s.RunOnce(ctx)
		if err != nil {
			s.cfg.Log.Error("mail outbox", "err", err)
		}
		if n >= s.cfg.Batch {
			select {
			case <-s.stop:
				return
			default:
				continue
			}
		}
		wait := s.cfg.Poll
		if at, ok, err := s.cfg.Outbox.NextMailDue(ctx); err == nil && ok {
			wait = min(wait, max(time.Duration(at-s.cfg.Now().UnixMilli())*time.Millisecond, 10*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce claims one batch of due messages and tries each; it returns how
// many it claimed. At most once an hour it also deletes the finished
// messages older than the retention. It is not safe for concurrent use.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	ms, err := s.cfg.Outbox.ClaimMail(ctx, store.MailClaim{
		Now: now.UnixMilli(), LeaseUntil: now.Add(s.cfg.Lease).UnixMilli(), Token: s.token, Limit: s.cfg.Batch,
	})
	if err != nil {
		return 0, fmt.Errorf("claim mail: %w", err)
	}
	for i := range ms {
		s.deliver(ctx, &ms[i])
	}
	if now.Sub(s.purgedAt) >= purgeEvery {
		n, err := s.cfg.Outbox.PurgeMail(ctx, now.Add(-s.cfg.Retention).UnixMilli())
		if err != nil {
			return len(ms), fmt.Errorf("purge mail: %w", err)
		}
		s.purgedAt = now
		if n > 0 {
			s.cfg.Log.Info("mail outbox: deleted finished messages", "count", n, "older_than", s.cfg.Retention.String())
		}
	}
	return len(ms), nil
}

// purgeEvery is how often RunOnce deletes old finished messages. Every node
// does; the deletions are idempotent.
const purgeEvery = time.Hour

func (s *Sender) deliver(ctx context.Context, m *store.Mail) {
	err := s.cfg.Transport.Send(ctx, s.cfg.From, m)
	now := s.cfg.Now()
	var msg string
	var retryAt int64
	giveUp := false
	if err != nil {
		msg = err.Error()
		var pe *PermanentError
		giveUp = errors.As(err, &pe) || m.Attempts >= s.cfg.MaxAttempts
		if !giveUp {
			retryAt = now.Add(s.backoff(m.Attempts)).UnixMilli()
		}
	}
	// The outcome is written even when ctx was cancelled meanwhile.
	ok, ferr := s.cfg.Outbox.FinishMail(context.WithoutCancel(ctx), m.ID, s.token, now.UnixMilli(), msg, retryAt, giveUp)
	switch {
	case ferr != nil:
		s.cfg.Log.Error("mail outbox: record delivery", "mail_id", m.ID, "err", ferr)
	case !ok:
		s.cfg.Log.Warn("mail outbox: claim lost during delivery", "mail_id", m.ID)
	case err == nil:
		s.cfg.Log.Debug("mail delivered", "mail_id", m.ID, "to", strings.Join(m.To, ","), "attempt", m.Attempts)
	case giveUp:
		s.cfg.Log.Error("mail failed for good", "mail_id", m.ID, "to", strings.Join(m.To, ","), "attempts", m.Attempts, "err", err)
	default:
		s.cfg.Log.Warn("mail delivery failed; will retry", "mail_id", m.ID, "attempt", m.Attempts,
			"retry_at", time.UnixMilli(retryAt).UTC().Format(time.RFC3339), "err", err)
	}
}

// backoff is the wait after the given number of failed attempts.
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.cfg.BackoffBase
	for i := 1; i < attempts && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	// ±20% jitter, so that senders do not retry in step.
	span := int64(d) * 2 / 5
	if span > 0 {
		if n, err := rand.Int(rand.Reader, big.NewInt(span)); err == nil {
			d += time.Duration(n.Int64() - span/2)
		}
	}
	return d
}
