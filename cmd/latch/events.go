package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/events"
	"github.com/latchhq/latch/postgres"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/store"
)

// isPostgres reports whether the --db URL selects PostgreSQL.
func isPostgres(dbURL string) bool {
	return strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://")
}

// bus is an events.Bus that the server closes at shutdown.
type bus interface {
	events.Bus
	Close() error
}

type localBus struct{ *events.Local }

func (localBus) Close() error { return nil }

// newBus returns the change-notice bus: LISTEN/NOTIFY between the nodes
// sharing a PostgreSQL database, in-process on SQLite (one node).
func newBus(ctx context.Context, cfg config, st store.Store, log *slog.Logger) (bus, error) {
	if !isPostgres(cfg.DB) {
		return localBus{events.NewLocal()}, nil
	}
	dbOf, ok := st.(interface{ DB() *sql.DB })
	if !ok {
		return nil, fmt.Errorf("change notices: store %T has no database handle", st)
	}
	n, err := postgres.Listen(ctx, cfg.DB, dbOf.DB(), log)
	if err != nil {
		return nil, fmt.Errorf("change notices: %w", err)
	}
	log.Info("listening for change notices from other nodes", "node", n.NodeID())
	return n, nil
}

// publisher publishes change notices for the hooks the backend and the
// caches call after a change was committed. A notice that cannot be sent
// (the database is unreachable) is retried in the background a few times;
// the other nodes' caches expire on their own meanwhile (tokens: 5 minutes).
type publisher struct {
	bus events.Bus
	log *slog.Logger
}

func (p *publisher) publish(ctx context.Context, topic string) {
	// The request may end (and its context with it) before the notice is out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := p.bus.Publish(ctx, topic)
	if err == nil {
		return
	}
	p.log.Error("change notice not sent; retrying", "topic", topic, "err", err)
	go func() {
		for _, d := range []time.Duration{time.Second, 4 * time.Second, 15 * time.Second} {
			time.Sleep(d)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.bus.Publish(ctx, topic)
			cancel()
			if err == nil {
				return
			}
		}
		p.log.Error("change notice not sent; other nodes may serve stale cached data until it expires", "topic", topic, "err", err)
	}()
}

// UserChanged implements backend.Events.
func (p *publisher) UserChanged(ctx context.Context, _ int64) { p.publish(ctx, events.Tokens) }

// tokenHooks implements backend.TokenHooks: changes go through the bus (to
// this node's token cache and the other nodes'), pending uses come from this
// node's tracker.
type tokenHooks struct {
	*publisher
	tokens *auth.Tokens
}

func (h tokenHooks) TokenChanged(ctx context.Context, _ string) { h.publish(ctx, events.Tokens) }

func (h tokenHooks) Pending(id string) (store.TokenUse, bool) { return h.tokens.Pending(id) }

// publishingSettings is the settings service as the REST API updates it: a
// successful update is announced to the other nodes, which reload.
type publishingSettings struct {
	*settings.Service
	p *publisher
}

func (s publishingSettings) Update(ctx context.Context, body []byte) (before, after *settings.Settings, err error) {
	before, after, err = s.Service.Update(ctx, body)
	if err == nil {
		s.p.publish(ctx, events.Settings)
	}
	return before, after, err
}

// reloadSettings is the settings subscriber: drop cached tokens at once
// (their validity depends on the settings), then read the document again in
// the background, with a few retries while the database may be failing over,
// so that the listener is never held up. Notices arriving during a reload
// cause one more. The background work stops with ctx; wait on the returned
// WaitGroup before closing the store.
func reloadSettings(ctx context.Context, policy *settings.Service, tokens *auth.Tokens, log *slog.Logger) (func(), *sync.WaitGroup) {
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			}
			var err error
			for _, d := range []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = policy.Load(lctx)
				cancel()
				if err == nil {
					break
				}
			}
			tokens.Invalidate()
			if err != nil {
				log.Error("reload settings after a change notice", "err", err)
			}
		}
	}()
	return func() {
		tokens.Invalidate()
		select {
		case kick <- struct{}{}:
		default: // a reload is already due
		}
	}, &wg
}
