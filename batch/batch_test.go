package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type use struct {
	id string
	at int64
}

type sink struct {
	mu      sync.Mutex
	batches [][]use
	fail    error
}

func (s *sink) write(_ context.Context, b []use) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.batches = append(s.batches, append([]use(nil), b...))
	return nil
}

func newBatcher(s *sink, interval time.Duration) *Batcher[string, use] {
	return New(Config[string, use]{
		Write: s.write, Key: func(u use) string { return u.id }, Newer: func(a, b use) bool { return a.at > b.at },
		Interval: interval, What: "test",
	})
}

func TestNewestPerKeyOneBatch(t *testing.T) {
	s := &sink{}
	b := newBatcher(s, time.Hour)
	for i := range 1000 {
		b.Add(use{"a", int64(i)})
		b.Add(use{"b", int64(1000 - i)})
	}
	if v, _ := b.Pending("a"); v.at != 999 {
		t.Fatalf("pending a = %d, want the newest 999", v.at)
	}
	if v, _ := b.Pending("b"); v.at != 1000 {
		t.Fatalf("pending b = %d, want the newest 1000", v.at)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(s.batches) != 1 || len(s.batches[0]) != 2 {
		t.Fatalf("batches %v, want one of two", s.batches)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestFailedWriteIsKept(t *testing.T) {
	s := &sink{fail: errors.New("down")}
	b := newBatcher(s, time.Hour)
	defer b.Close(context.Background())
	b.Add(use{"a", 5})
	if err := b.Flush(context.Background()); err == nil {
		t.Fatal("Flush hid the failure")
	}
	b.Add(use{"a", 3}) // older than the kept one
	if v, ok := b.Pending("a"); !ok || v.at != 5 {
		t.Fatalf("pending after failure = %v %v, want 5", v, ok)
	}
	s.fail = nil
	if err := b.Flush(context.Background()); err != nil || len(s.batches) != 1 || s.batches[0][0].at != 5 {
		t.Fatalf("retry: %v %v", err, s.batches)
	}
}

func TestBackgroundWrites(t *testing.T) {
	s := &sink{}
	b := newBatcher(s, 20*time.Millisecond)
	defer b.Close(context.Background())
	b.Add(use{"a", 1})
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.batches)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no background write")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := b.Pending("a"); ok {
		t.Fatal("written value still pending")
	}
}
