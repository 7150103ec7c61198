package store

import (
	"context"

	"github.com/latchhq/latch"
)

// RevokedToken remembers a token that was revoked (deleted), by the keyed
// digest of its secret, so that a leak report or a validity check on that
// secret can answer "revoked" rather than "unknown". Nothing else of the
// token is kept.
type RevokedToken struct {
	Digest    []byte
	ID        string // the token's non-secret id
	Kind      latch.CredentialKind
	RevokedAt int64 // epoch ms
	// Owner is the name of the user who owned the token.
	Owner string
}

// RevokedTokens stores the digests of revoked tokens.
type RevokedTokens interface {
	// RecordRevokedToken stores r; recording a digest already stored keeps
	// the first record and is not an error.
	RecordRevokedToken(ctx context.Context, r *RevokedToken) error
	// RevokedTokenByDigest finds the record of digest d: one indexed
	// equality lookup; a missing one is an error wrapping latch.ErrNotFound.
	RevokedTokenByDigest(ctx context.Context, d []byte) (*RevokedToken, error)
}
