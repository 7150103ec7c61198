package sshd

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/latchhq/latch/store"
)

// KeyUseStore stores batches of key uses.
type KeyUseStore interface {
	RecordKeyUse(ctx context.Context, uses []store.KeyUse) error
}

// UseTracker batches "last authenticated" times of SSH keys: uses are kept in
// memory and written in one batch per interval, so a key is written at most
// once per interval whatever its connection rate, and never while a client
// waits. It is the SSH counterpart of auth.UseTracker for tokens.
type UseTracker struct {
	st       KeyUseStore
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	pending map[int64]int64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewUseTracker returns a tracker that flushes every interval.
func NewUseTracker(st KeyUseStore, interval time.Duration, log *slog.Logger) *UseTracker {
	if log == nil {
		log = slog.Default()
	}
	u := &UseTracker{st: st, log: log, interval: interval, pending: map[int64]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go u.loop()
	return u
}

// Used notes that key id authenticated at (epoch ms).
func (u *UseTracker) Used(id, at int64) {
	u.mu.Lock()
	if u.pending[id] < at {
		u.pending[id] = at
	}
	u.mu.Unlock()
}

// PendingKeyUse returns the not yet written use of key id, so that listings
// show uses the store has not seen yet.
func (u *UseTracker) PendingKeyUse(id int64) (int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	at, ok := u.pending[id]
	return at, ok
}

// Flush writes the pending uses now; on failure they are kept for the next
// flush.
func (u *UseTracker) Flush(ctx context.Context) error {
	u.mu.Lock()
	batch := make([]store.KeyUse, 0, len(u.pending))
	for id, at := range u.pending {
		batch = append(batch, store.KeyUse{ID: id, At: at})
	}
	clear(u.pending)
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := u.st.RecordKeyUse(ctx, batch); err != nil {
		u.mu.Lock()
		for _, b := range batch {
			if u.pending[b.ID] < b.At {
				u.pending[b.ID] = b.At
			}
		}
		u.mu.Unlock()
		return err
	}
	return nil
}

func (u *UseTracker) loop() {
	defer close(u.done)
	t := time.NewTicker(u.interval)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
			if err := u.Flush(context.Background()); err != nil {
				u.log.Error("record SSH key use", "err", err)
			}
		}
	}
}

// Close stops the background flushes and writes what is pending.
func (u *UseTracker) Close(ctx context.Context) error {
	u.once.Do(func() { close(u.stop) })
	<-u.done
	return u.Flush(ctx)
}
