package backend_test

import (
	"context"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
)

// An ADMIN must not reach SYS_ADMIN through a group that holds it: not by
// joining it, nor by emptying or deleting it.
func TestAdminCannotUseASysAdminGroup(t *testing.T) {
	ctx := context.Background()
	b, st, _, sys := newTestBackend(t, "root")
	if _, err := b.CreateUser(ctx, sys, backend.NewUser{Name: "ada", Password: "pw", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	ada, _ := st.UserByName(ctx, "ada")
	if err := b.SetPermission(ctx, sys, backend.PermTarget{}, backend.Users, []string{"ada"}, "ADMIN"); err != nil {
		t.Fatal(err)
	}
	admin := &latch.Principal{User: ada, Credential: latch.CredPassword}
	for _, g := range []string{"sysadmins", "plain"} {
		if _, err := b.CreateGroup(ctx, sys, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetPermission(ctx, sys, backend.PermTarget{}, backend.Groups, []string{"sysadmins"}, "SYS_ADMIN"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddUsersToGroup(ctx, sys, "sysadmins", []string{"root"}); err != nil {
		t.Fatal(err)
	}

	if err := b.AddUsersToGroup(ctx, admin, "sysadmins", []string{"ada"}); err == nil {
		t.Error("an ADMIN joined a SYS_ADMIN group")
	}
	if acc, _ := st.Access(ctx, ada.ID, latch.Resource{}); acc.Global != latch.LevelAdmin {
		t.Errorf("ada's global level is %v after the refusal", acc.Global)
	}
	if err := b.RemoveUserFromGroup(ctx, admin, "sysadmins", "root"); err == nil {
		t.Error("an ADMIN removed a member of a SYS_ADMIN group")
	}
	if _, err := b.DeleteGroup(ctx, admin, "sysadmins"); err == nil {
		t.Error("an ADMIN deleted a SYS_ADMIN group")
	}
	// Groups without a higher permission stay the ADMIN's to manage.
	if err := b.AddUsersToGroup(ctx, admin, "plain", []string{"ada"}); err != nil {
		t.Errorf("ADMIN managing a plain group: %v", err)
	}
	if _, ok := backend.IsDenied(b.AddUsersToGroup(ctx, admin, "sysadmins", []string{"root"})); !ok {
		t.Error("refusal is not a Denied")
	}
}
