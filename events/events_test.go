package events_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/latchhq/latch/events"
)

func TestLocal(t *testing.T) {
	ctx := context.Background()
	b := events.NewLocal()
	var tokens, settings atomic.Int32
	var order []string
	b.Subscribe(events.Tokens, func() { tokens.Add(1); order = append(order, "a") })
	b.Subscribe(events.Tokens, func() { order = append(order, "b") })
	b.Subscribe(events.Settings, func() { settings.Add(1) })
	b.Subscribe(events.Settings, nil) // ignored

	if err := b.Publish(ctx, events.Tokens); err != nil {
		t.Fatal(err)
	}
	// Delivered before Publish returns, in subscription order.
	if tokens.Load() != 1 || settings.Load() != 0 || len(order) != 2 || order[0] != "a" || order[1] != "b" {
		t.Fatalf("after publishing tokens: tokens=%d settings=%d order=%v", tokens.Load(), settings.Load(), order)
	}
	if err := b.Publish(ctx, "nobody-listens"); err != nil {
		t.Fatal(err)
	}
	b.DeliverAll()
	if tokens.Load() != 2 || settings.Load() != 1 {
		t.Fatalf("after DeliverAll: tokens=%d settings=%d", tokens.Load(), settings.Load())
	}
	for _, bad := range []string{"", "Tokens", "a b", "x\n", string(make([]byte, 33))} {
		if err := b.Publish(ctx, bad); err == nil {
			t.Errorf("Publish(%q) succeeded", bad)
		}
	}
}

func TestPanickingSubscriber(t *testing.T) {
	b := events.NewLocal()
	var ran atomic.Bool
	b.Subscribe(events.Keys, func() { panic("boom") })
	b.Subscribe(events.Keys, func() { ran.Store(true) })
	if err := b.Publish(context.Background(), events.Keys); err != nil {
		t.Fatal(err)
	}
	if !ran.Load() {
		t.Error("a panicking subscriber stopped the next one")
	}
}

func TestValidTopic(t *testing.T) {
	for _, ok := range []string{events.Tokens, events.Settings, events.Keys, events.Access, "mail.outbox", "a-b_c9"} {
		if !events.ValidTopic(ok) {
			t.Errorf("ValidTopic(%q) = false", ok)
		}
	}
}
