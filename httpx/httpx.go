// Package httpx holds what latch's HTTP transports share: the principal of a
// request, JSON reading and writing with size limits, Data Center paging
// parameters and the mapping of domain errors to status codes.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"sync"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/store"
)

type principalKey struct{}

// WithPrincipal returns a context carrying the request's principal.
func WithPrincipal(ctx context.Context, p *latch.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Principal returns the request's principal, latch.Anonymous if none.
func Principal(ctx context.Context) *latch.Principal {
	if p, ok := ctx.Value(principalKey{}).(*latch.Principal); ok && p != nil {
		return p
	}
	return latch.Anonymous
}

// MaxBody is the largest request body a JSON endpoint reads.
const MaxBody = 1 << 20

// DecodeJSON reads a JSON body of at most MaxBody bytes into v. An empty body
// is allowed when emptyOK is set.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	body := http.MaxBytesReader(w, r.Body, MaxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return &latch.Error{Kind: ErrTooLarge, Message: fmt.Sprintf("The request body is larger than %d bytes.", MaxBody)}
		case errors.Is(err, io.EOF):
			if emptyOK {
				return nil
			}
			return latch.Invalidf("A JSON request body is required.")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field != "" {
				return latch.Invalidf("Field %q has the wrong type: expected %s.", typeErr.Field, typeErr.Type)
			}
			return latch.Invalidf("The request body must be a JSON %s, not %s.", jsonKind(typeErr.Type), typeErr.Value)
		}
		return latch.Invalidf("The request body is not valid JSON.")
	}
	if dec.More() {
		return latch.Invalidf("The request body must hold exactly one JSON value.")
	}
	return nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	}
	return "number"
}

// Error kinds particular to HTTP.
var (
	ErrTooLarge         = errors.New("request too large")
	ErrMethodNotAllowed = errors.New("method not allowed")
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WriteJSON writes v as JSON with the given status. The body is encoded
// first so that it goes out with a Content-Length in one write, not chunked.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Status maps a domain error to an HTTP status; 500 for anything unknown.
func Status(err error) int {
	if _, ok := backend.IsDenied(err); ok {
		return http.StatusUnauthorized
	}
	switch {
	case errors.Is(err, latch.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, latch.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, latch.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, latch.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, latch.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// ParsePage reads Data Center's start and limit query parameters.
func ParsePage(r *http.Request) (store.Page, error) {
	var p store.Page
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		dst  *int
	}{{"start", &p.Start}, {"limit", &p.Limit}} {
		s := q.Get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return store.Page{}, latch.Invalidf("The %s parameter must be a non-negative integer.", f.name)
		}
		*f.dst = n
	}
	if p.Start > 1<<30 {
		return store.Page{}, latch.Invalidf("The start parameter is too large.")
	}
	return p, nil
}

// NotFound returns a latch.ErrNotFound error with the given message.
func NotFound(format string, args ...any) error {
	return latch.Errorf(latch.ErrNotFound, format, args...)
}

// PeerAddr returns the address of the request's peer.
func PeerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ClientAddr returns the client's address as the server's origin middleware
// found it (through trusted proxies), or the peer's.
func ClientAddr(r *http.Request) netip.Addr {
	if o := audit.OriginFrom(r.Context()); o.Addr.IsValid() {
		return o.Addr
	}
	return PeerAddr(r)
}

// Invalid returns a latch.ErrInvalid error with the given message.
func Invalid(format string, args ...any) error { return latch.Invalidf(format, args...) }

// TooLarge returns the error for a body over MaxBody.
func TooLarge() error {
	return &latch.Error{Kind: ErrTooLarge, Message: fmt.Sprintf("The request body is larger than %d bytes.", MaxBody)}
}
