package sqlstore

import (
	"context"
	"errors"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func TestRevokedTokens(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var rs store.RevokedTokens = s
	d := []byte("0123456789abcdef0123456789abcdef")
	if _, err := rs.RevokedTokenByDigest(ctx, d); !errors.Is(err, latch.ErrNotFound) {
		t.Fatalf("missing digest: %v, want ErrNotFound", err)
	}
	r := &store.RevokedToken{Digest: d, ID: "123456789012", Kind: latch.CredPersonalToken, RevokedAt: 42}
	if err := rs.RecordRevokedToken(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Recording again keeps the first record.
	if err := rs.RecordRevokedToken(ctx, &store.RevokedToken{Digest: d, ID: "999999999999", RevokedAt: 43}); err != nil {
		t.Fatalf("second record: %v", err)
	}
	got, err := rs.RevokedTokenByDigest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Kind != r.Kind || got.RevokedAt != 42 || string(got.Digest) != string(d) {
		t.Fatalf("got %+v, want %+v", got, r)
	}
	if err := rs.RecordRevokedToken(ctx, &store.RevokedToken{ID: "1"}); !errors.Is(err, latch.ErrInvalid) {
		t.Fatalf("record without digest: %v, want ErrInvalid", err)
	}
	// Inside a transaction, the Store handed to fn keeps the method.
	err = s.WithTx(ctx, func(tx store.Store) error {
		trs, ok := tx.(store.RevokedTokens)
		if !ok {
			t.Fatal("a transaction's Store is not a store.RevokedTokens")
		}
		return trs.RecordRevokedToken(ctx, &store.RevokedToken{Digest: []byte("other"), ID: "2", RevokedAt: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.RevokedTokenByDigest(ctx, []byte("other")); err != nil {
		t.Fatal(err)
	}
}
