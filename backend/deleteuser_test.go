package backend_test

import (
	"context"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/token"
)

// Deleting a user deletes their tokens, and their secrets then read as
// revoked (not unknown) to the validity check and the audit trail.
func TestDeletedUsersTokensReadAsRevoked(t *testing.T) {
	ctx := context.Background()
	b, st, _, admin := newTestBackend(t, "root")
	hasher := token.NewHasher([]byte("delete-user-test-secret-0123456789"))
	b.SetHasher(hasher)
	if _, err := b.CreateUser(ctx, admin, backend.NewUser{Name: "gone", Password: "pw", Email: "gone@example.com"}); err != nil {
		t.Fatal(err)
	}
	gone, _ := st.UserByName(ctx, "gone")
	name := "ci"
	v, err := b.CreateToken(ctx, &latch.Principal{User: gone, Credential: latch.CredPassword}, backend.TokenOwnerRef{UserSlug: "gone"}, backend.TokenInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteUser(ctx, admin, "gone"); err != nil {
		t.Fatal(err)
	}
	d := hasher.Digest(v.Secret)
	if _, err := st.TokenByDigest(ctx, d[:]); err == nil {
		t.Fatal("the deleted user's token still exists")
	}
	r, err := st.RevokedTokenByDigest(ctx, d[:])
	if err != nil {
		t.Fatalf("the deleted user's token is not recorded as revoked: %v", err)
	}
	if r.ID != v.ID || r.Owner != "gone" {
		t.Fatalf("revoked record %+v, want id %s owned by gone", r, v.ID)
	}
}
