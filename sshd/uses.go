package sshd

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchhq/latch/batch"
	"github.com/latchhq/latch/store"
)

// KeyUseStore stores batches of key uses.
type KeyUseStore interface {
	RecordKeyUse(ctx context.Context, uses []store.KeyUse) error
}

// UseTracker batches "last authenticated" times of SSH keys (see package
// batch): a key is written at most once per interval, never while a client
// waits.
type UseTracker struct {
	b *batch.Batcher[int64, store.KeyUse]
}

// NewUseTracker returns a tracker that flushes every interval.
func NewUseTracker(st KeyUseStore, interval time.Duration, log *slog.Logger) *UseTracker {
	return &UseTracker{b: batch.New(batch.Config[int64, store.KeyUse]{
		Write:    st.RecordKeyUse,
		Key:      func(u store.KeyUse) int64 { return u.ID },
		Newer:    func(a, b store.KeyUse) bool { return a.At > b.At },
		Interval: interval, Log: log, What: "SSH key use",
	})}
}

// Used notes that key id authenticated at (epoch ms).
func (u *UseTracker) Used(id, at int64) { u.b.Add(store.KeyUse{ID: id, At: at}) }

// PendingKeyUse returns the not yet written use of key id, so that listings
// show uses the store has not seen yet.
func (u *UseTracker) PendingKeyUse(id int64) (int64, bool) {
	v, ok := u.b.Pending(id)
	return v.At, ok
}

// Flush writes the pending uses now; on failure they are kept for the next
// flush.
func (u *UseTracker) Flush(ctx context.Context) error { return u.b.Flush(ctx) }

// Close stops the background flushes and writes what is pending.
func (u *UseTracker) Close(ctx context.Context) error { return u.b.Close(ctx) }
