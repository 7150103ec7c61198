// Package auth turns presented credentials into a latch.Principal: it parses
// Authorization headers, verifies passwords (argon2id) and, through the
// credential resolvers registered with it, tokens and keys. It never decides
// what a principal may do; latch.Authorizer does.
package auth

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/latchhq/latch"
)

// Scheme is an Authorization header scheme.
type Scheme int

// Schemes understood by latch.
const (
	SchemeNone Scheme = iota
	SchemeBasic
	SchemeBearer
)

// Credentials are what a client presented in an Authorization header.
type Credentials struct {
	Scheme   Scheme
	Username string // Basic only
	Secret   string // password or token
}

// maxHeaderSecret bounds what is accepted from a header before any work.
const maxHeaderSecret = 4096

// ErrMalformed is returned for an Authorization header latch cannot parse.
var ErrMalformed = &latch.Error{Kind: latch.ErrUnauthorized, Message: "Malformed Authorization header.", Exception: latch.ExAuthentication}

// ParseAuthorizations parses the values of a request's Authorization
// headers: none is SchemeNone, more than one is ErrMalformed (the header is
// not a list, and which one a server or proxy honours differs).
func ParseAuthorizations(values []string) (Credentials, error) {
	switch len(values) {
	case 0:
		return Credentials{}, nil
	case 1:
		return ParseAuthorization(values[0])
	}
	return Credentials{}, ErrMalformed
}

// ParseAuthorization parses an Authorization header value. An empty header
// yields SchemeNone and no error.
func ParseAuthorization(h string) (Credentials, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return Credentials{}, nil
	}
	if len(h) > maxHeaderSecret {
		return Credentials{}, ErrMalformed
	}
	scheme, rest, _ := strings.Cut(h, " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			// Some clients omit padding.
			raw, err = base64.RawStdEncoding.DecodeString(rest)
		}
		if err != nil || !utf8.Valid(raw) {
			return Credentials{}, ErrMalformed
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" || pass == "" || strings.ContainsAny(user, "\x00\r\n") {
			return Credentials{}, ErrMalformed
		}
		return Credentials{Scheme: SchemeBasic, Username: user, Secret: pass}, nil
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" || strings.ContainsAny(rest, " \t\x00") || !utf8.ValidString(rest) {
			return Credentials{}, ErrMalformed
		}
		return Credentials{Scheme: SchemeBearer, Secret: rest}, nil
	}
	return Credentials{}, ErrMalformed
}
