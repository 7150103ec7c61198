// Package batch keeps "last used" records in memory and writes them in one
// batch per interval, so that a credential is written at most once per
// interval whatever its request rate, and never while a client waits. It
// serves token and SSH key authentication alike.
package batch

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Batcher holds the newest pending value per key and writes them all every
// interval, and on Close.
type Batcher[K comparable, V any] struct {
	write    func(context.Context, []V) error
	key      func(V) K
	newer    func(a, b V) bool
	log      *slog.Logger
	what     string
	interval time.Duration

	mu      sync.Mutex
	pending map[K]V

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// Config configures a Batcher.
type Config[K comparable, V any] struct {
	// Write stores one batch.
	Write func(context.Context, []V) error
	// Key returns the key of a value; Newer reports whether a is newer than b.
	Key   func(V) K
	Newer func(a, b V) bool
	// Interval between background writes.
	Interval time.Duration
	// Log and What name failures of background writes.
	Log  *slog.Logger
	What string
}

// New starts a Batcher that writes every cfg.Interval.
func New[K comparable, V any](cfg Config[K, V]) *Batcher[K, V] {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	b := &Batcher[K, V]{
		write: cfg.Write, key: cfg.Key, newer: cfg.Newer, log: cfg.Log, what: cfg.What, interval: cfg.Interval,
		pending: map[K]V{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go b.loop()
	return b
}

// Add notes v, keeping the newest value per key until the next write.
func (b *Batcher[K, V]) Add(v V) {
	k := b.key(v)
	b.mu.Lock()
	if cur, ok := b.pending[k]; !ok || b.newer(v, cur) {
		b.pending[k] = v
	}
	b.mu.Unlock()
}

// Pending returns the value of k not yet written, if any, so that listings
// show what the store has not seen yet.
func (b *Batcher[K, V]) Pending(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.pending[k]
	return v, ok
}

// Flush writes the pending values now; on failure they are kept for the
// next write, unless newer ones arrived meanwhile.
func (b *Batcher[K, V]) Flush(ctx context.Context) error {
	b.mu.Lock()
	batch := make([]V, 0, len(b.pending))
	for _, v := range b.pending {
		batch = append(batch, v)
	}
	clear(b.pending)
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := b.write(ctx, batch); err != nil {
		for _, v := range batch {
			b.Add(v)
		}
		return err
	}
	return nil
}

func (b *Batcher[K, V]) loop() {
	defer close(b.done)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			if err := b.Flush(context.Background()); err != nil {
				b.log.Error("write "+b.what, "err", err)
			}
		}
	}
}

// Close stops the background writes and writes what is pending. It may be
// called more than once.
func (b *Batcher[K, V]) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { close(b.stop) })
	<-b.done
	return b.Flush(ctx)
}
