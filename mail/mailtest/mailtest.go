// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp)
// inside a test and collects what it receives. StartWith adds TLS
// (STARTTLS or implicit) with a throwaway certificate authority, and
// required authentication.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one received message, decoded.
type Message struct {
	From    string
	To      []string
	Subject string
	Body    string // decoded text
	Header  mail.Header
	Raw     []byte
}

// Server is an SMTP server on a loopback port.
type Server struct {
	Addr string
	// CAFile is the PEM file of the certificate authority that signed the
	// server's certificate, "" without TLS.
	CAFile string
	// CertPool holds that authority, nil without TLS.
	CertPool *x509.CertPool

	opts Options
	mu   sync.Mutex
	msgs []Message
	auth []string // mechanisms used by successful AUTHs
	srv  *smtp.Server
	ln   net.Listener
	cond chan struct{}
}

// Options configure StartWith.
type Options struct {
	// TLS offers STARTTLS; with Implicit the listener speaks TLS from the
	// first byte instead (port 465 style).
	TLS, Implicit bool
	// Username and Password, when set, are required: mail from a session
	// that did not authenticate is refused with 530.
	Username, Password string
	// Mechanisms are the AUTH mechanisms offered: "PLAIN", "LOGIN" or both
	// (default both).
	Mechanisms []string
}

// Start starts a server on a free loopback port, stopped when t ends.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts a server with TLS and authentication as opts says.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{cond: make(chan struct{}), opts: opts}
	if len(s.opts.Mechanisms) == 0 {
		s.opts.Mechanisms = []string{sasl.Plain, sasl.Login}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	if opts.TLS || opts.Implicit {
		cfg := s.newTLS(t)
		if opts.Implicit {
			ln = tls.NewListener(ln, cfg)
		}
		s.serveTLS(ln, cfg)
	} else {
		s.serve(ln)
	}
	t.Cleanup(s.Stop)
	return s
}

// newTLS makes a certificate authority and a certificate for 127.0.0.1 and
// localhost signed by it, writing the authority to a file for processes.
func (s *Server) newTLS(t testing.TB) *tls.Config {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	s.CertPool = x509.NewCertPool()
	s.CertPool.AddCert(ca)
	s.CAFile = filepath.Join(t.TempDir(), "mailtest-ca.pem")
	if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// AuthMechanisms returns the mechanisms of the successful AUTHs so far.
func (s *Server) AuthMechanisms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// StartAt starts a server listening on addr (e.g. one a process was told to
// use while nothing listened there yet).
func StartAt(t testing.TB, addr string) *Server {
	t.Helper()
	s := &Server{cond: make(chan struct{}), Addr: addr}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(ln net.Listener) { s.serveTLS(ln, nil) }

func (s *Server) serveTLS(ln net.Listener, cfg *tls.Config) {
	s.ln = ln
	s.srv = smtp.NewServer(backend{s})
	if cfg != nil && !s.opts.Implicit {
		s.srv.TLSConfig = cfg // offers STARTTLS
	}
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	// Without TLS, AUTH is offered in the clear (loopback only), so that a
	// client's own refusal can be tested.
	s.srv.AllowInsecureAuth = true
	go s.srv.Serve(ln)
}

// Stop stops the server.
func (s *Server) Stop() { _ = s.srv.Close() }

// Messages returns what was received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait waits until at least n messages arrived, or timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.cond
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("received %d mail messages within %v, want %d", got, timeout, n)
		}
	}
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.cond)
	s.cond = make(chan struct{})
	s.mu.Unlock()
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s      *Server
	from   string
	to     []string
	authed bool
}

// AuthMechanisms implements smtp.AuthSession.
func (x *session) AuthMechanisms() []string {
	if x.s.opts.Username == "" {
		return nil
	}
	return x.s.opts.Mechanisms
}

// Auth implements smtp.AuthSession.
func (x *session) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		if username != x.s.opts.Username || password != x.s.opts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		x.authed = true
		x.s.mu.Lock()
		x.s.auth = append(x.s.auth, mech)
		x.s.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, username, password string) error { return check(username, password) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of the LOGIN mechanism (go-sasl has only
// the client): it asks for the user name, then the password.
type loginServer struct {
	check    func(username, password string) error
	username string
	step     int
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if response != nil { // an initial response is the user name
			l.username = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(response))
	}
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.Username != "" && !x.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return errors.New("unparsable message")
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	x.s.add(Message{From: x.from, To: append([]string(nil), x.to...), Subject: subject,
		Body: strings.TrimSuffix(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n"), Header: msg.Header, Raw: raw})
	return nil
}
