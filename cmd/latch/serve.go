package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/cachestore"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/events"
	"github.com/latchhq/latch/githttp"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/latchrest"
	"github.com/latchhq/latch/leaks"
	"github.com/latchhq/latch/mail"
	"github.com/latchhq/latch/postgres"
	"github.com/latchhq/latch/server"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/sshd"
	"github.com/latchhq/latch/sshkey"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

func newServeCommand() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the latch server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.resolve(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, os.Stderr)
		},
	}
	cfg.bindFlags(cmd.Flags())
	return cmd
}

func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("LATCH_LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve runs latch until ctx is cancelled, then shuts down gracefully,
// letting in-flight requests (pushes among them) finish.
func serve(ctx context.Context, cfg config, stderr io.Writer) error {
	log := newLogger(stderr)
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	secret, err := loadSecret(filepath.Join(cfg.Data, "secret.key"))
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Access and repository lookups, made by every request, are cached; the
	// cache is dropped on every write that could change them.
	st := cachestore.New(db)
	// Change notices keep the caches of every node current (events package).
	notices, err := newBus(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	defer notices.Close()
	pub := &publisher{bus: notices, log: log}

	// Nodes sharing a data directory (PostgreSQL) each need a hook socket of
	// their own.
	hooks, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: cfg.Data, Logger: log, PrivateSocket: isPostgres(cfg.DB)})
	if err != nil {
		return fmt.Errorf("start push hooks: %w", err)
	}
	defer hooks.Close()
	repos, err := gitrepo.NewManager(filepath.Join(cfg.Data, "repositories"), hooks)
	if err != nil {
		return fmt.Errorf("open repositories: %w", err)
	}
	repos.SetLimit(cfg.GitMax, gitQueueWait)
	b := backend.New(st, repos, log)
	if err := bootstrapAdmin(ctx, b, stderr); err != nil {
		return err
	}
	policy := settings.NewService(st, func(ctx context.Context, name string) (bool, error) {
		_, err := st.GroupByName(ctx, name)
		if errors.Is(err, latch.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err := policy.Load(ctx); err != nil {
		return err
	}
	auditLog := audit.NewLog(st, log)
	b.SetPolicy(policy)
	b.SetAudit(auditLog)

	authn := auth.NewAuthenticator(st, policy, auth.NewLimiter(), auditLog)
	uses := auth.NewUseTracker(st, time.Minute, log)
	defer func() {
		if err := uses.Close(context.Background()); err != nil {
			log.Error("flush token use at shutdown", "err", err)
		}
	}()
	tokens := auth.NewTokens(st, token.NewHasher(secret), uses, policy, auditLog)
	authn.SetTokenResolver(tokens)
	b.SetHasher(tokens.Hasher())
	b.SetTokenHooks(tokenHooks{pub, tokens})
	b.SetEvents(pub)
	policy.OnChange(tokens.Invalidate)
	st.OnChange(func() { pub.publish(context.Background(), events.Access) })
	notices.Subscribe(events.Tokens, tokens.Invalidate)
	// Background work that uses the store stops, and is waited for, before
	// the store closes (deferred calls run last first).
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer background.Wait()
	defer stopBackground()
	onSettings, reloading := reloadSettings(bgCtx, policy, tokens, log)
	notices.Subscribe(events.Settings, onSettings)
	background.Add(1)
	go func() { defer background.Done(); reloading.Wait() }()
	notices.Subscribe(events.Access, st.Purge)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	links := dcrest.Links{BaseURL: cfg.BaseURL, SSH: cfg.sshHostPort()}
	var hostKey ssh.Signer
	if cfg.SSH != "off" {
		if hostKey, err = sshd.LoadOrCreateHostKey(filepath.Join(cfg.Data, sshd.HostKeyFile)); err != nil {
			return err
		}
		links.SSHHostKey = sshkey.Fingerprint(hostKey.PublicKey())
	}
	// Leaked credentials: validity check, revocation on report (owners are
	// told through the mail outbox), push protection.
	leakSvc := leaks.New(leaks.Config{Backend: b, Policy: policy, Audit: auditLog, Links: links, Log: log})
	hooks.SetHandler(leakSvc)
	handler, err := server.New(server.Config{
		Log:           log,
		Authenticator: authn,
		REST: []interface{ Register(*http.ServeMux) }{
			dcrest.New(b, links, log),
			latchrest.New(b, publishingSettings{policy, pub}, links, log),
			leakSvc,
		},
		Git:      githttp.New(b, authn, repos, log),
		Registry: reg,
		Network:  func() *settings.NetworkPolicy { return &policy.Current().Network },
		// Browsers send the public origin, which a proxy in front may
		// not pass on as the Host header.
		TrustedOrigins: []string{cfg.origin()},
	})
	if err != nil {
		return err
	}

	// Mail goes through the outbox in the database; a background sender
	// delivers it (or, without --smtp, logs it).
	var transport mail.Transport = mail.LogTransport{Log: log}
	if cfg.SMTP != "" {
		// Credentials come from the environment only, so that the password
		// is not in the process list; port 465 speaks TLS from the start.
		_, port, _ := net.SplitHostPort(cfg.SMTP)
		transport = &mail.SMTP{Addr: cfg.SMTP, ImplicitTLS: port == "465",
			Username: os.Getenv("LATCH_SMTP_USERNAME"), Password: os.Getenv("LATCH_SMTP_PASSWORD")}
	}
	mailer := mail.NewSender(mail.Config{Outbox: st, Transport: transport, From: cfg.MailFrom, Log: log})
	mailer.Start()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := mailer.Close(closeCtx); err != nil {
			log.Error("stop mail sender", "err", err)
		}
	}()
	b.SetMailer(mailer)
	// Expiry reminders: any node may run them; each is sent exactly once.
	background.Add(1)
	go func() {
		defer background.Done()
		b.RunReminders(bgCtx, 10*time.Minute, log)
	}()

	// Git over SSH, unless --ssh off.
	keyUses := sshd.NewUseTracker(st, time.Minute, log)
	defer func() {
		if err := keyUses.Close(context.Background()); err != nil {
			log.Error("flush SSH key use at shutdown", "err", err)
		}
	}()
	b.SetKeyUses(keyUses)
	var sshSrv *sshd.Server
	sshErrc := make(chan error, 1)
	if cfg.SSH != "off" {
		sshSrv, err = sshd.New(sshd.Config{HostKey: hostKey, Keys: st, Backend: b, Repos: repos, Log: log, Uses: keyUses,
			CheckNetwork: authn.CheckNetwork, Audit: auditLog})
		if err != nil {
			return err
		}
		sshLn, err := net.Listen("tcp", cfg.SSH)
		if err != nil {
			return fmt.Errorf("listen on %s (SSH): %w", cfg.SSH, err)
		}
		go func() { sshErrc <- sshSrv.Serve(sshLn) }()
		log.Info("SSH started", "ssh", sshLn.Addr().String(), "host_key", sshSrv.HostKeyFingerprint())
	}

	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("latch started", "http", ln.Addr().String(), "base_url", cfg.BaseURL, "data", cfg.Data)

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case err := <-sshErrc:
		return fmt.Errorf("ssh server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sshDone := make(chan struct{})
	go func() {
		defer close(sshDone)
		if sshSrv != nil {
			if err := sshSrv.Shutdown(shutdownCtx); err != nil {
				log.Error("ssh shutdown", "err", err)
			}
		}
	}()
	defer func() { <-sshDone }()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func openStore(ctx context.Context, cfg config) (store.Store, error) {
	if isPostgres(cfg.DB) {
		st, err := postgres.Open(ctx, cfg.DB)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return st, nil
	}
	path := cfg.DB
	if path == "" {
		path = filepath.Join(cfg.Data, "latch.db")
	}
	path = strings.TrimPrefix(path, "sqlite://")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	return st, nil
}

// loadSecret reads the server secret that keys token digests, creating it
// on first start.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("server secret %s is too short", path)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read server secret: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate server secret: %w", err)
	}
	// Written whole under a temporary name, then linked into place (which
	// fails if it exists): a node starting at the same moment never reads a
	// partly written secret, and exactly one secret wins.
	f, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return nil, fmt.Errorf("create server secret: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write server secret: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Another node created it first.
			return loadSecret(path)
		}
		return nil, fmt.Errorf("create server secret: %w", err)
	}
	return b, nil
}

// bootstrapAdmin creates user admin on first start, with the password from
// LATCH_ADMIN_PASSWORD or a generated one printed once to stderr.
func bootstrapAdmin(ctx context.Context, b *backend.Backend, stderr io.Writer) error {
	password, given := os.LookupEnv("LATCH_ADMIN_PASSWORD")
	if !given || password == "" {
		var err error
		if password, err = generatePassword(); err != nil {
			return err
		}
		given = false
	}
	created, err := b.Bootstrap(ctx, "admin", password, "admin@localhost")
	if errors.Is(err, latch.ErrConflict) {
		// Another node starting at the same time created it.
		created, err = false, nil
	}
	if err != nil {
		return err
	}
	if created && !given {
		fmt.Fprintf(stderr, "\nlatch: created user admin with password: %s\nlatch: it is shown only this once.\n\n", password)
	}
	return nil
}

func generatePassword() (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b), nil
}
