package postgres

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/events"
)

// Channel is the PostgreSQL notification channel latch nodes share. A
// notice's payload is "{topic} {node id}".
const Channel = "latch_events"

// Listener timing.
const (
	pingTimeout = 5 * time.Second
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
)

// keepaliveEvery is how long the listener waits for a notification before
// checking that its connection is still alive (a variable for tests).
var keepaliveEvery = 30 * time.Second

// Notifier is an events.Bus across latch nodes sharing one PostgreSQL
// database: Publish runs this node's subscribers at once and sends
// NOTIFY latch_events through the connection pool; a dedicated connection
// LISTENs and runs the subscribers of notices from other nodes (a node's
// own notices are recognized by its id and not run twice).
//
// When the listening connection breaks (server restart, failover, network,
// pg_terminate_backend), the Notifier reconnects with exponential backoff
// (100 ms to 5 s, jittered) and, once listening again, runs every subscriber
// of every topic once, since notices sent meanwhile were lost. A silent
// network failure is found within about 35 seconds by a ping when no
// notification arrived for 30 seconds; the caches' own TTL bounds
// staleness beyond that.
//
// The listening connection needs a session of its own: through PgBouncer,
// use session pooling for latch (LISTEN does not work in transaction
// pooling mode).
type Notifier struct {
	events.Subscribers

	db      *sql.DB
	cfg     *pgx.ConnConfig
	node    string
	appName string
	log     *slog.Logger
	idle    time.Duration // keepaliveEvery when the Notifier was made

	mu        sync.Mutex
	connected bool // the listening connection is up
	resets    int

	cancel context.CancelFunc
	done   chan struct{}
}

// Listen connects the listening connection to the database at dbURL,
// LISTENs, and returns a Notifier that publishes through db (a pool on the
// same database, e.g. the store's DB()). The first connection is made before
// Listen returns, so that a node does not start deaf; later ones are retried
// forever, until Close.
func Listen(ctx context.Context, dbURL string, db *sql.DB, log *slog.Logger) (*Notifier, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: notifier: parse connection string %s: %w", redact(dbURL), err)
	}
	if log == nil {
		log = slog.Default()
	}
	var id [8]byte
	if _, err := crand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("postgres: notifier: node id: %w", err)
	}
	n := &Notifier{
		db:   db,
		cfg:  cfg,
		node: hex.EncodeToString(id[:]),
		log:  log,
		idle: keepaliveEvery,
		done: make(chan struct{}),
	}
	n.Subscribers.Log = log
	n.appName = "latch-listen-" + n.node
	cfg.RuntimeParams["application_name"] = n.appName
	conn, err := n.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: notifier: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go n.run(runCtx, conn)
	return n, nil
}

// NodeID identifies this node in notices.
func (n *Notifier) NodeID() string { return n.node }

// ApplicationName is the application_name of the listening connection, as
// pg_stat_activity shows it.
func (n *Notifier) ApplicationName() string { return n.appName }

// Connected reports whether the listening connection is up.
func (n *Notifier) Connected() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.connected
}

// Resets counts how many times the listening connection was restored after
// a loss (and every subscriber run).
func (n *Notifier) Resets() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.resets
}

// Publish runs topic's subscribers on this node, then notifies the other
// nodes. NOTIFY is sent outside any transaction: call Publish after the
// change is committed, so that the other nodes read the new state.
func (n *Notifier) Publish(ctx context.Context, topic string) error {
	if !events.ValidTopic(topic) {
		return fmt.Errorf("events: invalid topic %q", topic)
	}
	n.Deliver(topic)
	if _, err := n.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", Channel, topic+" "+n.node); err != nil {
		return fmt.Errorf("postgres: notify %s: %w", topic, err)
	}
	return nil
}

// Close stops listening and closes the listening connection.
func (n *Notifier) Close() error {
	n.cancel()
	<-n.done
	return nil
}

// connect opens the listening connection and LISTENs on it.
func (n *Notifier) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{Channel}.Sanitize()); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("listen: %w", err)
	}
	n.mu.Lock()
	n.connected = true
	n.mu.Unlock()
	return conn, nil
}

func (n *Notifier) run(ctx context.Context, conn *pgx.Conn) {
	defer close(n.done)
	for {
		err := n.listen(ctx, conn)
		n.mu.Lock()
		n.connected = false
		n.mu.Unlock()
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("events: lost the listening connection to PostgreSQL; reconnecting", "err", err)
		if conn = n.reconnect(ctx); conn == nil {
			return
		}
		n.mu.Lock()
		n.resets++
		n.mu.Unlock()
		n.log.Info("events: listening again; flushing every cache, since notices may have been missed")
		n.DeliverAll()
	}
}

// listen dispatches notifications until the connection fails or ctx ends.
func (n *Notifier) listen(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, n.idle)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("keepalive: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		n.dispatch(note.Payload)
	}
}

func (n *Notifier) dispatch(payload string) {
	topic, node, ok := strings.Cut(payload, " ")
	if !ok || !events.ValidTopic(topic) {
		n.log.Warn("events: ignoring a malformed notice", "payload", payload)
		return
	}
	if node == n.node {
		return // ours: delivered by Publish
	}
	n.Deliver(topic)
}

// reconnect retries connect with jittered exponential backoff until it
// succeeds (returning the connection) or ctx ends (returning nil).
func (n *Notifier) reconnect(ctx context.Context) *pgx.Conn {
	backoff := minBackoff
	for {
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := n.connect(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		n.log.Warn("events: reconnecting the listener failed", "err", err, "retry_in", backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

var _ events.Bus = (*Notifier)(nil)
