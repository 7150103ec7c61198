package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

var _ store.RevokedTokens = (*Store)(nil)

// RecordRevokedToken stores the digest of a revoked token; a digest already
// recorded keeps its first record.
func (s *Store) RecordRevokedToken(ctx context.Context, r *store.RevokedToken) error {
	if len(r.Digest) == 0 || r.ID == "" {
		return latch.Invalidf("A revoked token needs a digest and an id.")
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO revoked_tokens (digest, id, kind, revoked_at, owner)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, r.Digest, r.ID, string(r.Kind), r.RevokedAt, r.Owner)
	return s.wrap(err, "record revoked token %s", r.ID)
}

// RevokedTokenByDigest finds the revoked token whose digest is d.
func (s *Store) RevokedTokenByDigest(ctx context.Context, d []byte) (*store.RevokedToken, error) {
	r := store.RevokedToken{}
	var kind string
	err := s.q.QueryRowContext(ctx, "SELECT digest, id, kind, revoked_at, owner FROM revoked_tokens WHERE digest = $1", d).
		Scan(&r.Digest, &r.ID, &kind, &r.RevokedAt, &r.Owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ErrNotFound, "No such revoked token.")
	}
	if err != nil {
		return nil, s.wrap(err, "read revoked token")
	}
	r.Kind = latch.CredentialKind(kind)
	return &r, nil
}
