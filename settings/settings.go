// Package settings holds latch's administrator settings: token policy,
// password authentication, network restrictions and push protection. They
// live in the database as one JSON document, so every node sees the same
// settings; a Service keeps the current document in memory for the hot path
// and reloads it when told that it changed.
package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/latchhq/latch"
)

// Settings is the administrator settings document.
type Settings struct {
	Tokens   TokenPolicy    `json:"tokens"`
	SSHKeys  SSHKeyPolicy   `json:"sshKeys"`
	Auth     AuthPolicy     `json:"auth"`
	Network  NetworkPolicy  `json:"network"`
	Scanning ScanningPolicy `json:"scanning"`
}

// TokenPolicy governs access tokens of every kind.
type TokenPolicy struct {
	RequireExpiry bool `json:"requireExpiry"`
	// MaxExpiryDays caps expiry; 0 means no maximum.
	MaxExpiryDays int `json:"maxExpiryDays"`
	MaxPerUser    int `json:"maxPerUser"`
	// CreateGroups limits who may create tokens (empty: everyone).
	CreateGroups []string `json:"createGroups"`
	// UseGroups limits whose tokens authenticate (empty: everyone).
	UseGroups []string `json:"useGroups"`
	// OnBehalfGroups may create, update and revoke other users' tokens.
	OnBehalfGroups []string `json:"onBehalfGroups"`
}

// SSHKeyPolicy governs the expiry of new SSH keys, user and access keys
// alike; keys added before a change keep their expiry.
type SSHKeyPolicy struct {
	RequireExpiry bool `json:"requireExpiry"`
	// MaxExpiryDays caps expiry; 0 means no maximum.
	MaxExpiryDays int `json:"maxExpiryDays"`
}

// AuthPolicy says where passwords are accepted.
type AuthPolicy struct {
	PasswordForGit  bool `json:"passwordForGit"`
	PasswordForRest bool `json:"passwordForRest"`
}

// NetworkPolicy restricts where credentials may be used from and says how
// to find the client's address behind proxies.
type NetworkPolicy struct {
	AllowedCIDRs   []string `json:"allowedCidrs"`
	TrustedProxies []string `json:"trustedProxies"`
	ClientIPHeader string   `json:"clientIpHeader"`

	allowed []netip.Prefix
	proxies []netip.Prefix
}

// Push protection modes.
const (
	PushBlock = "block"
	PushWarn  = "warn"
	PushOff   = "off"
)

// ScanningPolicy governs push protection.
type ScanningPolicy struct {
	PushProtection string `json:"pushProtection"`
}

// Default returns the settings of a new instance.
func Default() *Settings {
	return &Settings{
		Tokens:   TokenPolicy{MaxPerUser: 100, CreateGroups: []string{}, UseGroups: []string{}, OnBehalfGroups: []string{}},
		Auth:     AuthPolicy{PasswordForGit: true, PasswordForRest: true},
		Network:  NetworkPolicy{AllowedCIDRs: []string{}, TrustedProxies: []string{}, ClientIPHeader: "X-Forwarded-For"},
		Scanning: ScanningPolicy{PushProtection: PushBlock},
	}
}

// Limits on values.
const (
	MaxExpiryDaysLimit = 3650
	MaxPerUserLimit    = 10000
	maxListLen         = 100
)

var headerRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,64}$`)

func fieldErr(field, format string, args ...any) error {
	return &latch.Error{Kind: latch.ErrInvalid, Message: field + ": " + fmt.Sprintf(format, args...), Exception: latch.ExValidation}
}

// GroupChecker reports whether a group exists.
type GroupChecker func(ctx context.Context, name string) (bool, error)

// validate checks every field and precomputes parsed ranges.
func (s *Settings) validate(ctx context.Context, groupExists GroupChecker) error {
	t := &s.Tokens
	if t.MaxExpiryDays < 0 || t.MaxExpiryDays > MaxExpiryDaysLimit {
		return fieldErr("tokens.maxExpiryDays", "must be between 0 (no maximum) and %d", MaxExpiryDaysLimit)
	}
	if k := s.SSHKeys.MaxExpiryDays; k < 0 || k > MaxExpiryDaysLimit {
		return fieldErr("sshKeys.maxExpiryDays", "must be between 0 (no maximum) and %d", MaxExpiryDaysLimit)
	}
	if t.MaxPerUser < 1 || t.MaxPerUser > MaxPerUserLimit {
		return fieldErr("tokens.maxPerUser", "must be between 1 and %d", MaxPerUserLimit)
	}
	for field, groups := range map[string]*[]string{
		"tokens.createGroups": &t.CreateGroups, "tokens.useGroups": &t.UseGroups, "tokens.onBehalfGroups": &t.OnBehalfGroups,
	} {
		if *groups == nil {
			*groups = []string{}
		}
		if len(*groups) > maxListLen {
			return fieldErr(field, "at most %d groups", maxListLen)
		}
		for _, g := range *groups {
			if g == "" {
				return fieldErr(field, "group names cannot be empty")
			}
			if groupExists == nil {
				continue
			}
			ok, err := groupExists(ctx, g)
			if err != nil {
				return err
			}
			if !ok {
				return fieldErr(field, "unknown group %q", g)
			}
		}
	}
	n := &s.Network
	var err error
	if n.allowed, err = parsePrefixes("network.allowedCidrs", &n.AllowedCIDRs); err != nil {
		return err
	}
	if n.proxies, err = parsePrefixes("network.trustedProxies", &n.TrustedProxies); err != nil {
		return err
	}
	if !headerRE.MatchString(n.ClientIPHeader) {
		return fieldErr("network.clientIpHeader", "must be an HTTP header name such as X-Forwarded-For")
	}
	switch s.Scanning.PushProtection {
	case PushBlock, PushWarn, PushOff:
	default:
		return fieldErr("scanning.pushProtection", "must be block, warn or off")
	}
	return nil
}

func parsePrefixes(field string, list *[]string) ([]netip.Prefix, error) {
	if *list == nil {
		*list = []string{}
	}
	if len(*list) > maxListLen {
		return nil, fieldErr(field, "at most %d ranges", maxListLen)
	}
	out := make([]netip.Prefix, 0, len(*list))
	for i, c := range *list {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(c))
			if aerr != nil {
				return nil, fieldErr(field, "%q is not an address range such as 203.0.113.0/24", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		p = p.Masked()
		(*list)[i] = p.String()
		out = append(out, p)
	}
	return out, nil
}

// InRanges reports whether addr lies in one of ranges.
func InRanges(ranges []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range ranges {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Allowed reports whether credentials may be used from addr: true when no
// ranges are set.
func (n *NetworkPolicy) Allowed(addr netip.Addr) bool {
	return len(n.allowed) == 0 || InRanges(n.allowed, addr)
}

// ClientAddr returns the client's address: the peer, or, when the peer is a
// trusted proxy, the right-most address in the client address header that
// is not itself a trusted proxy.
func (n *NetworkPolicy) ClientAddr(peer netip.Addr, header func(string) []string) netip.Addr {
	peer = peer.Unmap()
	if !InRanges(n.proxies, peer) {
		return peer
	}
	var hops []string
	for _, v := range header(n.ClientIPHeader) {
		hops = append(hops, strings.Split(v, ",")...)
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(h)
		if err != nil {
			ap, perr := netip.ParseAddrPort(h)
			if perr != nil {
				break // a garbled hop: trust nothing further left
			}
			a = ap.Addr()
		}
		addr = a.Unmap()
		if !InRanges(n.proxies, addr) {
			break
		}
	}
	return addr
}

// InGroups reports whether a user in userGroups passes a group list: an
// empty list lets everyone pass.
func InGroups(list []string, userGroups []string) bool {
	if len(list) == 0 {
		return true
	}
	for _, g := range userGroups {
		if slices.Contains(list, g) {
			return true
		}
	}
	return false
}

// clone returns a deep copy of s, so that a new document never shares
// memory with the one readers may be using.
func (s *Settings) clone() Settings {
	c := *s
	c.Tokens.CreateGroups = slices.Clone(s.Tokens.CreateGroups)
	c.Tokens.UseGroups = slices.Clone(s.Tokens.UseGroups)
	c.Tokens.OnBehalfGroups = slices.Clone(s.Tokens.OnBehalfGroups)
	c.Network.AllowedCIDRs = slices.Clone(s.Network.AllowedCIDRs)
	c.Network.TrustedProxies = slices.Clone(s.Network.TrustedProxies)
	c.Network.allowed = slices.Clone(s.Network.allowed)
	c.Network.proxies = slices.Clone(s.Network.proxies)
	return c
}

// Store is where the settings document is kept.
type Store interface {
	Setting(ctx context.Context, key string) (string, bool, error)
	PutSetting(ctx context.Context, key, value string) error
}

const storeKey = "admin.settings"

// Service holds the current settings.
type Service struct {
	mu          sync.Mutex // serializes updates
	st          Store
	groupExists GroupChecker
	cur         atomic.Pointer[Settings]
	onChange    []func()
}

// NewService returns a Service over st; call Load before use.
func NewService(st Store, groupExists GroupChecker) *Service {
	s := &Service{st: st, groupExists: groupExists}
	d := Default()
	_ = d.validate(context.Background(), nil)
	s.cur.Store(d)
	return s
}

// OnChange registers a function called after the settings changed.
func (s *Service) OnChange(f func()) { s.onChange = append(s.onChange, f) }

// Current returns the settings in force. The result must not be modified.
func (s *Service) Current() *Settings { return s.cur.Load() }

// read returns the stored document, with defaults for what is not stored.
func (s *Service) read(ctx context.Context) (*Settings, error) {
	raw, ok, err := s.st.Setting(ctx, storeKey)
	if err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	next := Default()
	if ok {
		if err := json.Unmarshal([]byte(raw), next); err != nil {
			return nil, fmt.Errorf("load settings: %w", err)
		}
	}
	if err := next.validate(ctx, nil); err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	return next, nil
}

// Load reads the settings from the store, keeping defaults for what is not
// stored.
func (s *Service) Load(ctx context.Context) error {
	next, err := s.read(ctx)
	if err != nil {
		return err
	}
	s.cur.Store(next)
	for _, f := range s.onChange {
		f()
	}
	return nil
}

var sections = map[string]bool{"tokens": true, "sshKeys": true, "auth": true, "network": true, "scanning": true}

// Update applies a PUT document: each section it names replaces that section
// whole (fields it omits take their defaults), the others stay. Invalid
// documents change nothing. It returns the settings before and after.
func (s *Service) Update(ctx context.Context, body []byte) (before, after *Settings, err error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, nil, latch.Invalidf("The settings must be a JSON object.")
	}
	// Updates are applied one at a time, to the stored document: two PUTs
	// naming different sections, on this node or another, both take effect.
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, err := s.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	before = s.Current()
	next := stored.clone()
	def := Default()
	for name, raw := range doc {
		if !sections[name] {
			return nil, nil, fieldErr(name, "unknown settings section")
		}
		var dst any
		switch name {
		case "tokens":
			next.Tokens = def.Tokens
			dst = &next.Tokens
		case "sshKeys":
			next.SSHKeys = def.SSHKeys
			dst = &next.SSHKeys
		case "auth":
			next.Auth = def.Auth
			dst = &next.Auth
		case "network":
			next.Network = def.Network
			dst = &next.Network
		case "scanning":
			next.Scanning = def.Scanning
			dst = &next.Scanning
		}
		if err := decodeStrict(name, raw, dst); err != nil {
			return nil, nil, err
		}
	}
	if err := next.validate(ctx, s.groupExists); err != nil {
		return nil, nil, err
	}
	enc, err := json.Marshal(&next)
	if err != nil {
		return nil, nil, fmt.Errorf("encode settings: %w", err)
	}
	if err := s.st.PutSetting(ctx, storeKey, string(enc)); err != nil {
		return nil, nil, fmt.Errorf("save settings: %w", err)
	}
	s.cur.Store(&next)
	for _, f := range s.onChange {
		f()
	}
	return before, &next, nil
}

func decodeStrict(section string, raw json.RawMessage, dst any) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fieldErr(section, "must be an object")
	}
	// encoding/json matches keys case-insensitively; settings keys are
	// exact, so check them against the field tags first.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return fieldErr(section, "must be an object")
	}
	known := jsonKeys(dst)
	for k := range keys {
		if !known[k] {
			return fieldErr(section+"."+k, "unknown setting")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fieldErr(section+"."+te.Field, "wrong type: expected %s", te.Type)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fieldErr(section+"."+strings.Trim(f, `"`), "unknown setting")
		}
		return fieldErr(section, "must be an object")
	}
	return nil
}

// jsonKeys returns the JSON keys of the exported fields of the struct v
// points to.
func jsonKeys(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	keys := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" {
			keys[name] = true
		}
	}
	return keys
}
