package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testPermissions(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	devs := newGroup(t, s, "devs")
	p := newProject(t, s, "PRJ", false)
	r := newRepo(t, s, p, "repo", false)

	direct := func(res latch.Resource, sub store.Subject, want latch.Permission) {
		t.Helper()
		got, err := s.DirectPermission(ctx, res, sub)
		must(t, err)
		if got != want {
			t.Errorf("DirectPermission(%+v, %+v) = %q, want %q", res, sub, got, want)
		}
	}
	direct(global, userSub(alice), "")
	direct(projectRes(p), userSub(alice), "")
	direct(repoRes(r), userSub(alice), "")

	grant(t, s, global, userSub(alice), latch.ProjectCreate)
	grant(t, s, projectRes(p), userSub(alice), latch.ProjectWrite)
	grant(t, s, repoRes(r), userSub(alice), latch.RepoRead)
	grant(t, s, global, groupSub(devs), latch.LicensedUser)
	grant(t, s, projectRes(p), groupSub(devs), latch.ProjectRead)
	grant(t, s, repoRes(r), groupSub(devs), latch.RepoAdmin)

	direct(global, userSub(alice), latch.ProjectCreate)
	direct(projectRes(p), userSub(alice), latch.ProjectWrite)
	direct(repoRes(r), userSub(alice), latch.RepoRead)
	direct(global, groupSub(devs), latch.LicensedUser)
	direct(projectRes(p), groupSub(devs), latch.ProjectRead)
	direct(repoRes(r), groupSub(devs), latch.RepoAdmin)
	// A repository given by id alone is the same resource.
	direct(latch.Resource{RepoID: r.ID}, userSub(alice), latch.RepoRead)

	// Setting again replaces; the level follows the permission.
	grant(t, s, projectRes(p), userSub(alice), latch.ProjectAdmin)
	direct(projectRes(p), userSub(alice), latch.ProjectAdmin)
	grant(t, s, global, userSub(alice), latch.SysAdmin)
	direct(global, userSub(alice), latch.SysAdmin)
	a, err := s.Access(ctx, alice.ID, projectRes(p))
	must(t, err)
	if a.Global != latch.LevelSysAdmin || a.Project != latch.LevelAdmin {
		t.Errorf("Access after replacing = %+v", a)
	}
	grant(t, s, global, userSub(alice), latch.LicensedUser)
	a, err = s.Access(ctx, alice.ID, projectRes(p))
	must(t, err)
	if a.Global != latch.LevelRead || a.Project != latch.LevelAdmin {
		t.Errorf("Access after lowering = %+v", a)
	}

	// Revoke removes exactly one grant, and revoking nothing is no error.
	must(t, s.RevokePermission(ctx, projectRes(p), userSub(alice)))
	direct(projectRes(p), userSub(alice), "")
	direct(repoRes(r), userSub(alice), latch.RepoRead)
	direct(global, userSub(alice), latch.LicensedUser)
	direct(projectRes(p), groupSub(devs), latch.ProjectRead)
	must(t, s.RevokePermission(ctx, projectRes(p), userSub(alice)))
	must(t, s.RevokePermission(ctx, repoRes(r), groupSub(devs)))
	direct(repoRes(r), groupSub(devs), "")
	direct(repoRes(r), userSub(alice), latch.RepoRead)
	must(t, s.RevokePermission(ctx, global, groupSub(devs)))
	direct(global, groupSub(devs), "")
	direct(global, userSub(alice), latch.LicensedUser)
}

func testPermissionErrors(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	devs := newGroup(t, s, "devs")
	p := newProject(t, s, "PRJ", false)
	q := newProject(t, s, "QQ", false)
	r := newRepo(t, s, p, "repo", false)

	for _, tc := range []struct {
		what string
		res  latch.Resource
		sub  store.Subject
		perm latch.Permission
		kind error
	}{
		{"project permission globally", global, userSub(alice), latch.ProjectRead, latch.ErrInvalid},
		{"repository permission on a project", projectRes(p), userSub(alice), latch.RepoWrite, latch.ErrInvalid},
		{"global permission on a repository", repoRes(r), userSub(alice), latch.Admin, latch.ErrInvalid},
		{"unknown permission", projectRes(p), userSub(alice), "PROJECT_OWNER", latch.ErrInvalid},
		{"no subject", projectRes(p), store.Subject{}, latch.ProjectRead, latch.ErrInvalid},
		{"two subjects", projectRes(p), store.Subject{UserID: alice.ID, GroupID: devs.ID}, latch.ProjectRead, latch.ErrInvalid},
		{"missing user", projectRes(p), store.Subject{UserID: 99999}, latch.ProjectRead, latch.ErrNotFound},
		{"missing group", projectRes(p), store.Subject{GroupID: 99999}, latch.ProjectRead, latch.ErrNotFound},
		{"missing project", latch.Resource{ProjectID: 99999}, userSub(alice), latch.ProjectRead, latch.ErrNotFound},
		{"missing repository", latch.Resource{ProjectID: p.ID, RepoID: 99999}, userSub(alice), latch.RepoRead, latch.ErrNotFound},
		{"repository in another project", latch.Resource{ProjectID: q.ID, RepoID: r.ID}, userSub(alice), latch.RepoRead, latch.ErrNotFound},
	} {
		err := s.SetPermission(ctx, tc.res, tc.sub, tc.perm)
		wantErr(t, "SetPermission: "+tc.what, err, tc.kind)
	}
	gs, err := s.UserGrants(ctx, projectRes(p), "", all)
	must(t, err)
	if len(gs) != 0 {
		t.Errorf("failed SetPermission calls left grants: %+v", gs)
	}
	_, err = s.DirectPermission(ctx, projectRes(p), store.Subject{})
	wantErr(t, "DirectPermission with no subject", err, latch.ErrInvalid)
	wantErr(t, "RevokePermission with no subject", s.RevokePermission(ctx, projectRes(p), store.Subject{}), latch.ErrInvalid)
}

func testGrantListings(t *testing.T, s store.Store) {
	users := map[string]*latch.User{}
	for _, n := range []string{"carol", "Alice", "bob", "dave"} {
		users[n] = newUser(t, s, n)
	}
	devs, admins, ops := newGroup(t, s, "devs"), newGroup(t, s, "Admins"), newGroup(t, s, "ops")
	p := newProject(t, s, "PRJ", false)
	r := newRepo(t, s, p, "repo", false)
	r2 := newRepo(t, s, p, "other", false)

	grant(t, s, global, userSub(users["dave"]), latch.SysAdmin)
	grant(t, s, global, userSub(users["Alice"]), latch.ProjectCreate)
	grant(t, s, global, groupSub(admins), latch.Admin)
	grant(t, s, projectRes(p), userSub(users["carol"]), latch.ProjectAdmin)
	grant(t, s, projectRes(p), userSub(users["bob"]), latch.ProjectRead)
	grant(t, s, projectRes(p), userSub(users["Alice"]), latch.ProjectWrite)
	grant(t, s, projectRes(p), groupSub(ops), latch.ProjectRead)
	grant(t, s, projectRes(p), groupSub(devs), latch.ProjectWrite)
	grant(t, s, repoRes(r), userSub(users["bob"]), latch.RepoWrite)
	grant(t, s, repoRes(r), groupSub(devs), latch.RepoAdmin)
	grant(t, s, repoRes(r2), userSub(users["dave"]), latch.RepoRead)

	type ug struct {
		name string
		perm latch.Permission
	}
	userGrants := func(res latch.Resource, filter string, pg store.Page, want ...ug) {
		t.Helper()
		gs, err := s.UserGrants(ctx, res, filter, pg)
		must(t, err)
		var got []ug
		for _, g := range gs {
			got = append(got, ug{g.User.Name, g.Permission})
			if g.User.ID != users[g.User.Name].ID || g.User.Email == "" {
				t.Errorf("UserGrants: user %+v", g.User)
			}
		}
		if len(got) != len(want) {
			t.Errorf("UserGrants(%+v, %q, %+v) = %v, want %v", res, filter, pg, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("UserGrants(%+v, %q, %+v) = %v, want %v", res, filter, pg, got, want)
				return
			}
		}
	}
	groupGrants := func(res latch.Resource, filter string, pg store.Page, want ...string) {
		t.Helper()
		gs, err := s.GroupGrants(ctx, res, filter, pg)
		must(t, err)
		var got []string
		for _, g := range gs {
			got = append(got, g.Group.Name+":"+string(g.Permission))
			if g.Group.ID == 0 {
				t.Errorf("GroupGrants: group %+v", g.Group)
			}
		}
		wantList(t, label("GroupGrants(%+v, %q, %+v)", res, filter, pg), got, want...)
	}

	userGrants(global, "", all, ug{"Alice", latch.ProjectCreate}, ug{"dave", latch.SysAdmin})
	userGrants(projectRes(p), "", all, ug{"Alice", latch.ProjectWrite}, ug{"bob", latch.ProjectRead}, ug{"carol", latch.ProjectAdmin})
	userGrants(projectRes(p), "", page(1, 1), ug{"bob", latch.ProjectRead}, ug{"carol", latch.ProjectAdmin})
	userGrants(projectRes(p), "", page(2, 1), ug{"carol", latch.ProjectAdmin})
	userGrants(projectRes(p), "AROL", all, ug{"carol", latch.ProjectAdmin})
	userGrants(projectRes(p), "bob@example", all, ug{"bob", latch.ProjectRead})
	userGrants(repoRes(r), "", all, ug{"bob", latch.RepoWrite})
	userGrants(repoRes(r2), "", all, ug{"dave", latch.RepoRead})

	groupGrants(global, "", all, "Admins:ADMIN")
	groupGrants(projectRes(p), "", all, "devs:PROJECT_WRITE", "ops:PROJECT_READ")
	groupGrants(projectRes(p), "", page(0, 1), "devs:PROJECT_WRITE", "ops:PROJECT_READ")
	groupGrants(projectRes(p), "", page(1, 1), "ops:PROJECT_READ")
	groupGrants(projectRes(p), "OP", all, "ops:PROJECT_READ")
	groupGrants(repoRes(r), "", all, "devs:REPO_ADMIN")
	groupGrants(repoRes(r2), "", all)
}
