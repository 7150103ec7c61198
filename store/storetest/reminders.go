package storetest

import (
	"fmt"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// testReminders lists expiring tokens and SSH keys by window and leaves out
// those whose reminder was marked sent.
func testReminders(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	var keys []*store.SSHKey
	for i, exp := range []int64{0, 150, 250, 350} {
		id := fmt.Sprintf("%012d", i+1)
		must(t, s.CreateToken(ctx, &store.AccessToken{ID: id, Kind: latch.CredPersonalToken, Name: "t" + id, UserID: alice.ID,
			Digest: []byte("digest-" + id), CreatedAt: 1, ExpiresAt: exp}))
		k := &store.SSHKey{UserID: alice.ID, Text: fmt.Sprintf("ssh-ed25519 AAAAexpiring%d", i), Fingerprint: fmt.Sprintf("SHA256:expiring%d", i),
			Algorithm: "ED25519", Bits: 256, CreatedAt: 1, ExpiresAt: exp}
		must(t, s.CreateKey(ctx, k))
		keys = append(keys, k)
	}
	tokenIDs := func(after, until int64) []string {
		ts, err := s.TokensExpiring(ctx, after, until, "7d", 10)
		must(t, err)
		out := []string{}
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}
	keyExpiries := func(after, until int64) []string {
		ks, err := s.KeysExpiring(ctx, after, until, "7d", 10)
		must(t, err)
		out := []string{}
		for _, k := range ks {
			out = append(out, fmt.Sprint(k.ExpiresAt))
		}
		return out
	}
	wantList(t, "tokens expiring in (100, 300]", tokenIDs(100, 300), "000000000002", "000000000003")
	wantList(t, "keys expiring in (100, 300]", keyExpiries(100, 300), "150", "250")
	wantList(t, "keys expiring in (150, 350]", keyExpiries(150, 350), "250", "350")

	for _, c := range []string{"token:000000000002", fmt.Sprintf("sshkey:%d", keys[1].ID)} {
		first, err := s.MarkReminder(ctx, c, "7d", 5)
		if err != nil || !first {
			t.Errorf("MarkReminder(%s) = %v, %v; want the first", c, first, err)
		}
		if again, err := s.MarkReminder(ctx, c, "7d", 6); err != nil || again {
			t.Errorf("MarkReminder(%s) again = %v, %v", c, again, err)
		}
	}
	wantList(t, "tokens expiring in (100, 300] after one was reminded", tokenIDs(100, 300), "000000000003")
	wantList(t, "keys expiring in (100, 300] after one was reminded", keyExpiries(100, 300), "250")
	ks, err := s.KeysExpiring(ctx, 100, 300, "1d", 10)
	must(t, err)
	if len(ks) != 2 {
		t.Errorf("keys for another reminder: %d, want both", len(ks))
	}
}
