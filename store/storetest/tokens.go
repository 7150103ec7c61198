package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// testTokenAuth reads tokens as authentication does: with the owner and the
// owner's groups, by the current or the previous digest.
func testTokenAuth(t *testing.T, s store.Store) {
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	newGroup(t, s, "writers", alice)
	newGroup(t, s, "admins", alice, bob)
	newGroup(t, s, "others", bob)
	carol := newUser(t, s, "carol")
	create := func(id string, owner *latch.User, digest string) *store.AccessToken {
		t.Helper()
		tok := &store.AccessToken{ID: id, Kind: latch.CredPersonalToken, Name: "t" + id, UserID: owner.ID,
			Permissions: []latch.Permission{latch.RepoRead}, AllowedCIDRs: []string{"10.0.0.0/8"}, Digest: []byte(digest), CreatedAt: 7}
		must(t, s.CreateToken(ctx, tok))
		return tok
	}
	create("000000000001", alice, "digest-alice")
	create("000000000002", carol, "digest-carol")
	ok, err := s.RotateTokenDigest(ctx, "000000000001", []byte("digest-alice"), []byte("digest-alice-2"), []byte("digest-alice"), 99)
	must(t, err)
	if !ok {
		t.Fatal("RotateTokenDigest did not rotate")
	}

	for _, d := range []string{"digest-alice-2", "digest-alice"} {
		a, err := s.TokenAuthByDigest(ctx, []byte(d))
		must(t, err)
		if a.Token.ID != "000000000001" || a.Token.UserID != alice.ID || a.Token.Kind != latch.CredPersonalToken ||
			len(a.Token.Permissions) != 1 || a.Token.Permissions[0] != latch.RepoRead ||
			len(a.Token.AllowedCIDRs) != 1 || a.Token.PrevExpiresAt != 99 || string(a.Token.Digest) != "digest-alice-2" {
			t.Errorf("token by %s = %+v", d, a.Token)
		}
		if a.Owner.ID != alice.ID || a.Owner.Name != "alice" || a.Owner.Email != "alice@example.com" || a.Owner.Type != latch.UserNormal {
			t.Errorf("owner by %s = %+v", d, a.Owner)
		}
		wantList(t, "groups of alice by "+d, a.Groups, "admins", "writers")
	}
	a, err := s.TokenAuthByDigest(ctx, []byte("digest-carol"))
	must(t, err)
	if a.Owner.ID != carol.ID || len(a.Groups) != 0 {
		t.Errorf("carol's token: owner %+v, groups %v", a.Owner, a.Groups)
	}
	_, err = s.TokenAuthByDigest(ctx, []byte("no such digest"))
	wantErr(t, "TokenAuthByDigest(unknown)", err, latch.ErrNotFound)

	// A token goes with its owner.
	must(t, s.DeleteUser(ctx, carol.ID))
	_, err = s.TokenAuthByDigest(ctx, []byte("digest-carol"))
	wantErr(t, "TokenAuthByDigest after the owner was deleted", err, latch.ErrNotFound)
}
