// Package events carries change notices between the parts of latch that
// cache what the database holds, and between latch nodes.
//
// A notice names a topic ("tokens", "settings", ...) and nothing else: it
// says "what you cached about this may be stale, read it again", never what
// changed. Subscribers respond by dropping or reloading their cache, so a
// notice delivered twice or for nothing costs a cache miss, never a wrong
// answer.
//
// Two buses implement Bus: Local, in-process, for a single node on SQLite;
// and postgres.Notifier, which also carries notices to every other node
// through PostgreSQL LISTEN/NOTIFY. Both deliver a notice to the publishing
// node's own subscribers synchronously, inside Publish, so a node reads its
// own writes at once; other nodes get it asynchronously, normally within
// milliseconds. When a Notifier's listening connection is lost and
// restored, it runs every subscriber of every topic once (notices may have
// been missed meanwhile).
//
// Topics are short lower-case words. Packages that keep a cache subscribe at
// wiring time (cmd/latch) and publish after the change is committed:
//
//	bus.Subscribe(events.Tokens, tokens.Invalidate)
//	...
//	bus.Publish(ctx, events.Tokens) // after revoking a token
package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Topics latch uses.
const (
	// Tokens: a token, a user, a group membership or a permission changed:
	// token and access caches drop their entries.
	Tokens = "tokens"
	// Settings: the administrator settings document changed: reload it.
	Settings = "settings"
	// Keys: SSH keys or access keys changed: key caches drop their entries.
	Keys = "keys"
	// Access: projects, repositories or permissions changed: access and
	// repository caches drop their entries.
	Access = "access"
)

// Bus publishes change notices and delivers them to subscribers.
type Bus interface {
	// Publish tells every subscriber of topic, on this node (before Publish
	// returns) and on every other node, that what it cached may be stale.
	// An error means other nodes may not have been told; this node's
	// subscribers have run anyway.
	Publish(ctx context.Context, topic string) error
	// Subscribe registers fn to run on every notice of topic. fn must not
	// block for long: it runs on the publisher's goroutine for local
	// notices and on the bus's own goroutine for remote ones.
	Subscribe(topic string, fn func())
}

// ValidTopic reports whether topic can be published: 1 to 32 characters of
// a-z, 0-9, '.', '_' and '-'.
func ValidTopic(topic string) bool {
	if topic == "" || len(topic) > 32 {
		return false
	}
	for _, c := range []byte(topic) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Subscribers is the registry of subscribers a bus delivers to. Its zero
// value is ready to use; it is safe for concurrent use.
type Subscribers struct {
	// Log receives panics of subscribers; nil uses slog.Default().
	Log *slog.Logger

	mu   sync.RWMutex
	subs map[string][]func()
}

// Subscribe registers fn for topic.
func (s *Subscribers) Subscribe(topic string, fn func()) {
	if fn == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[string][]func(){}
	}
	s.subs[topic] = append(s.subs[topic], fn)
}

// Deliver runs every subscriber of topic, in the order they subscribed. A
// panicking subscriber is logged and does not stop the others.
func (s *Subscribers) Deliver(topic string) {
	s.mu.RLock()
	fns := s.subs[topic]
	s.mu.RUnlock()
	for _, fn := range fns {
		s.run(topic, fn)
	}
}

// DeliverAll runs every subscriber of every topic once, as if each topic had
// been published: what a bus does when notices may have been lost.
func (s *Subscribers) DeliverAll() {
	s.mu.RLock()
	var topics []string
	for t := range s.subs {
		topics = append(topics, t)
	}
	s.mu.RUnlock()
	for _, t := range topics {
		s.Deliver(t)
	}
}

func (s *Subscribers) run(topic string, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			log := s.Log
			if log == nil {
				log = slog.Default()
			}
			log.Error("events: subscriber panicked", "topic", topic, "panic", fmt.Sprint(p))
		}
	}()
	fn()
}

// Local is the bus of a single node: Publish runs the subscribers at once,
// in the caller's goroutine.
type Local struct {
	Subscribers
}

// NewLocal returns an in-process bus.
func NewLocal() *Local { return &Local{} }

// Publish runs topic's subscribers.
func (l *Local) Publish(_ context.Context, topic string) error {
	if !ValidTopic(topic) {
		return fmt.Errorf("events: invalid topic %q", topic)
	}
	l.Deliver(topic)
	return nil
}

var _ Bus = (*Local)(nil)
