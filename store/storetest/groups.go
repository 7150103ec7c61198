package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testGroups(t *testing.T, s store.Store) {
	devs := newGroup(t, s, "Developers")
	if devs.ID == 0 {
		t.Fatal("CreateGroup left ID 0")
	}
	newGroup(t, s, "admins")
	newGroup(t, s, "qa_team")
	newGroup(t, s, "Beta")

	wantErr(t, "CreateGroup(Developers) again", s.CreateGroup(ctx, &latch.Group{Name: "Developers"}), latch.ErrConflict)
	wantErr(t, "CreateGroup(developers): names are case-insensitive", s.CreateGroup(ctx, &latch.Group{Name: "developers"}), latch.ErrConflict)
	wantErr(t, "CreateGroup with no name", s.CreateGroup(ctx, &latch.Group{}), latch.ErrInvalid)

	for _, name := range []string{"Developers", "developers", "DEVELOPERS"} {
		g, err := s.GroupByName(ctx, name)
		must(t, err)
		if g.ID != devs.ID || g.Name != "Developers" {
			t.Errorf("GroupByName(%q) = %+v", name, *g)
		}
	}
	_, err := s.GroupByName(ctx, "nobody")
	wantException(t, "GroupByName(nobody)", err, latch.ErrNotFound, latch.ExNoSuchGroup)

	gs, err := s.ListGroups(ctx, "", all)
	must(t, err)
	wantList(t, "ListGroups", groupNames(gs), "admins", "Beta", "Developers", "qa_team")
	gs, err = s.ListGroups(ctx, "E", all)
	must(t, err)
	wantList(t, "ListGroups(E)", groupNames(gs), "Beta", "Developers", "qa_team")
	gs, err = s.ListGroups(ctx, "_", all)
	must(t, err)
	wantList(t, "ListGroups(_)", groupNames(gs), "qa_team")
	gs, err = s.ListGroups(ctx, "", page(1, 2))
	must(t, err)
	wantList(t, "ListGroups page(1,2)", groupNames(gs), "Beta", "Developers", "qa_team")
	gs, err = s.ListGroups(ctx, "", page(3, 2))
	must(t, err)
	wantList(t, "ListGroups page(3,2)", groupNames(gs), "qa_team")

	must(t, s.DeleteGroup(ctx, devs.ID))
	_, err = s.GroupByName(ctx, "Developers")
	wantErr(t, "GroupByName after delete", err, latch.ErrNotFound)
	wantErr(t, "DeleteGroup twice", s.DeleteGroup(ctx, devs.ID), latch.ErrNotFound)
	newGroup(t, s, "developers") // the name is free again
}

func testGroupMembers(t *testing.T, s store.Store) {
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	devs := newGroup(t, s, "devs")
	ops := newGroup(t, s, "ops")
	empty := newGroup(t, s, "empty")

	must(t, s.AddGroupMember(ctx, devs.ID, carol.ID))
	must(t, s.AddGroupMember(ctx, devs.ID, alice.ID))
	must(t, s.AddGroupMember(ctx, devs.ID, bob.ID))
	must(t, s.AddGroupMember(ctx, devs.ID, bob.ID)) // again: no error, no duplicate
	must(t, s.AddGroupMember(ctx, ops.ID, alice.ID))

	us, err := s.GroupMembers(ctx, devs.ID, all)
	must(t, err)
	wantList(t, "GroupMembers(devs)", userNames(us), "alice", "bob", "carol")
	if us[0].Email != "alice@example.com" || !us[0].Active {
		t.Errorf("member read back as %+v", us[0])
	}
	us, err = s.GroupMembers(ctx, devs.ID, page(0, 1))
	must(t, err)
	wantList(t, "GroupMembers(devs) page(0,1)", userNames(us), "alice", "bob")
	us, err = s.GroupMembers(ctx, devs.ID, page(2, 1))
	must(t, err)
	wantList(t, "GroupMembers(devs) page(2,1)", userNames(us), "carol")
	us, err = s.GroupMembers(ctx, empty.ID, all)
	must(t, err)
	wantList(t, "GroupMembers(empty)", userNames(us))
	_, err = s.GroupMembers(ctx, 98765, all)
	wantErr(t, "GroupMembers(missing group)", err, latch.ErrNotFound)

	gs, err := s.UserGroups(ctx, alice.ID)
	must(t, err)
	wantList(t, "UserGroups(alice)", groupNames(gs), "devs", "ops")
	gs, err = s.UserGroups(ctx, carol.ID)
	must(t, err)
	wantList(t, "UserGroups(carol)", groupNames(gs), "devs")
	lonely := newUser(t, s, "lonely")
	gs, err = s.UserGroups(ctx, lonely.ID)
	must(t, err)
	wantList(t, "UserGroups(lonely)", groupNames(gs))

	wantErr(t, "AddGroupMember(missing group)", s.AddGroupMember(ctx, 98765, alice.ID), latch.ErrNotFound)
	wantErr(t, "AddGroupMember(missing user)", s.AddGroupMember(ctx, devs.ID, 98765), latch.ErrNotFound)

	must(t, s.RemoveGroupMember(ctx, devs.ID, bob.ID))
	must(t, s.RemoveGroupMember(ctx, devs.ID, bob.ID)) // not a member any more: no error
	wantErr(t, "RemoveGroupMember(missing group)", s.RemoveGroupMember(ctx, 98765, bob.ID), latch.ErrNotFound)
	us, err = s.GroupMembers(ctx, devs.ID, all)
	must(t, err)
	wantList(t, "GroupMembers(devs) after removing bob", userNames(us), "alice", "carol")

	// Deleting a user or a group ends its memberships.
	must(t, s.DeleteUser(ctx, carol.ID))
	us, err = s.GroupMembers(ctx, devs.ID, all)
	must(t, err)
	wantList(t, "GroupMembers(devs) after deleting carol", userNames(us), "alice")
	must(t, s.DeleteGroup(ctx, ops.ID))
	gs, err = s.UserGroups(ctx, alice.ID)
	must(t, err)
	wantList(t, "UserGroups(alice) after deleting ops", groupNames(gs), "devs")
}
