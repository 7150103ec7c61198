package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/internal/pgtest"
	"github.com/latchhq/latch/postgres"
	"github.com/latchhq/latch/store"
)

// TestMailClaimAcrossNodes has several nodes (separate connection pools)
// claim the mail outbox at once, as their senders do: every message must be
// claimed exactly once while its lease runs.
func TestMailClaimAcrossNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	const nodes, senders, mails = 3, 4, 300
	var stores []store.Store
	for range nodes {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	now := time.Now().UnixMilli()
	for i := range mails {
		m := &store.Mail{To: []string{fmt.Sprintf("u%d@example.com", i)}, Subject: "s", Body: "b", CreatedAt: now}
		if err := stores[0].EnqueueMail(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	claimedBy := map[int64]string{}
	var dup []string
	var wg sync.WaitGroup
	start := time.Now()
	for n := range nodes {
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				token := fmt.Sprintf("node%d-sender%d", n, s)
				empty := 0
				for empty < 3 {
					got, err := stores[n].ClaimMail(ctx, store.MailClaim{
						Now: time.Now().UnixMilli(), LeaseUntil: time.Now().Add(time.Hour).UnixMilli(), Token: token, Limit: 5})
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						empty++
						continue
					}
					empty = 0
					mu.Lock()
					for _, m := range got {
						if prev, ok := claimedBy[m.ID]; ok {
							dup = append(dup, fmt.Sprintf("mail %d claimed by %s and %s", m.ID, prev, token))
						}
						claimedBy[m.ID] = token
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d senders on %d nodes claimed %d messages in %v", nodes*senders, nodes, len(claimedBy), time.Since(start))
	for _, d := range dup {
		t.Error(d)
	}
	if len(claimedBy) != mails {
		t.Errorf("claimed %d messages, want %d", len(claimedBy), mails)
	}
}
