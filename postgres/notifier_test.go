package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch/events"
	"github.com/latchhq/latch/internal/pgtest"
	"github.com/latchhq/latch/postgres"
	"github.com/latchhq/latch/sqlstore"
)

// node is one latch node's share of a notifier test: its store and bus,
// and counters of the notices its subscribers got.
type node struct {
	st       *sqlstore.Store
	bus      *postgres.Notifier
	tokens   atomic.Int32
	settings atomic.Int32
}

func newNode(t *testing.T, url string) *node {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bus, err := postgres.Listen(ctx, url, st.DB(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	n := &node{st: st, bus: bus}
	bus.Subscribe(events.Tokens, func() { n.tokens.Add(1) })
	bus.Subscribe(events.Settings, func() { n.settings.Add(1) })
	return n
}

// eventually polls cond every 5 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNotifierDelivers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a, b := newNode(t, url), newNode(t, url)
	if a.bus.NodeID() == b.bus.NodeID() {
		t.Fatal("two notifiers share a node id")
	}

	if err := a.bus.Publish(ctx, events.Tokens); err != nil {
		t.Fatal(err)
	}
	// The publisher's own subscribers ran before Publish returned.
	if got := a.tokens.Load(); got != 1 {
		t.Fatalf("publisher's tokens subscriber ran %d times, want 1", got)
	}
	start := time.Now()
	if !eventually(time.Second, func() bool { return b.tokens.Load() == 1 }) {
		t.Fatalf("the other node did not get the notice within 1 s (tokens=%d)", b.tokens.Load())
	}
	t.Logf("notice delivered to the other node in %v", time.Since(start))
	if err := b.bus.Publish(ctx, events.Settings); err != nil {
		t.Fatal(err)
	}
	if !eventually(time.Second, func() bool { return a.settings.Load() == 1 }) {
		t.Fatal("settings notice not delivered")
	}
	// No echo: a node does not run its subscribers twice for its own notice,
	// and topics stay apart.
	time.Sleep(100 * time.Millisecond)
	if a.tokens.Load() != 1 || b.tokens.Load() != 1 || a.settings.Load() != 1 || b.settings.Load() != 1 {
		t.Errorf("counts a=(%d,%d) b=(%d,%d), want 1 each", a.tokens.Load(), a.settings.Load(), b.tokens.Load(), b.settings.Load())
	}
	if err := a.bus.Publish(ctx, "no such topic"); err == nil {
		t.Error("an invalid topic was published")
	}
	// A malformed notice from elsewhere is ignored.
	if _, err := a.st.DB().ExecContext(ctx, "SELECT pg_notify($1, 'garbage')", postgres.Channel); err != nil {
		t.Fatal(err)
	}
	if err := a.bus.Publish(ctx, events.Tokens); err != nil {
		t.Fatal(err)
	}
	if !eventually(time.Second, func() bool { return b.tokens.Load() == 2 }) {
		t.Fatal("notice after a malformed one not delivered")
	}
}

// TestNotifierReconnects kills the listening connection from the database
// side: the node must notice, reconnect, flush every cache (run every
// subscriber) and go on receiving notices.
func TestNotifierReconnects(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a, b := newNode(t, url), newNode(t, url)

	for round := 1; round <= 3; round++ {
		var killed int
		err := a.st.DB().QueryRowContext(ctx,
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
			b.bus.ApplicationName()).Scan(&killed)
		if err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("round %d: terminated %d listening connections, want 1", round, killed)
		}
		tokens, settings := b.tokens.Load(), b.settings.Load()
		if !eventually(10*time.Second, func() bool { return b.bus.Resets() == round }) {
			t.Fatalf("round %d: the listener did not reconnect (resets=%d, connected=%v)", round, b.bus.Resets(), b.bus.Connected())
		}
		// The reset ran every subscriber once: every cache was flushed.
		if b.tokens.Load() != tokens+1 || b.settings.Load() != settings+1 {
			t.Errorf("round %d: after reconnecting tokens %d→%d, settings %d→%d; want one flush each",
				round, tokens, b.tokens.Load(), settings, b.settings.Load())
		}
		if !b.bus.Connected() {
			t.Errorf("round %d: not connected after the reset", round)
		}
		// And notices flow again.
		want := b.tokens.Load() + 1
		if err := a.bus.Publish(ctx, events.Tokens); err != nil {
			t.Fatal(err)
		}
		if !eventually(time.Second, func() bool { return b.tokens.Load() == want }) {
			t.Fatalf("round %d: notice after reconnecting not delivered", round)
		}
	}
	if a.bus.Resets() != 0 {
		t.Errorf("the other node reset %d times", a.bus.Resets())
	}
}

// TestNotifierClose checks that Close stops the listener and releases its
// connection.
func TestNotifierClose(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a := newNode(t, url)
	count := func() int {
		var n int
		if err := a.st.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`,
			a.bus.ApplicationName()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("%d listening connections, want 1", n)
	}
	if err := a.bus.Close(); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return count() == 0 }) {
		t.Error("the listening connection is still open after Close")
	}
	if _, err := postgres.Listen(ctx, "postgres://u@127.0.0.1:1/x?connect_timeout=2", a.st.DB(), nil); err == nil {
		t.Error("Listen on an unreachable server succeeded")
	}
}

// TestNotifierKeepalive runs the idle listener through many keepalive pings:
// they must not disturb the connection or lose notices.
func TestNotifierKeepalive(t *testing.T) {
	defer postgres.SetKeepalive(20 * time.Millisecond)()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a, b := newNode(t, url), newNode(t, url)
	for i := 1; i <= 5; i++ {
		time.Sleep(60 * time.Millisecond)
		if err := a.bus.Publish(ctx, events.Tokens); err != nil {
			t.Fatal(err)
		}
		if !eventually(time.Second, func() bool { return b.tokens.Load() == int32(i) }) {
			t.Fatalf("notice %d not delivered", i)
		}
	}
	if b.bus.Resets() != 0 || !b.bus.Connected() {
		t.Errorf("resets=%d connected=%v after idle keepalives", b.bus.Resets(), b.bus.Connected())
	}
}
