package storetest

import (
	"errors"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testCascadeDeletes(t *testing.T, s store.Store) {
	w := buildWorld(t, s)

	// Deleting a user deletes their grants.
	must(t, s.DeleteUser(ctx, w.carol.ID))
	gs, err := s.UserGrants(ctx, repoRes(w.a), "", all)
	must(t, err)
	for _, g := range gs {
		if g.User.ID == w.carol.ID {
			t.Errorf("carol's grant on P1/a survived her deletion")
		}
	}
	wantAccess(t, s, "deleted carol", w.carol.ID, repoRes(w.a), latch.Access{})

	// Deleting a group deletes its grants: dave loses P1 and P3/r3.
	must(t, s.DeleteGroup(ctx, w.devs.ID))
	wantAccess(t, s, "dave", w.dave.ID, repoRes(w.a), latch.Access{})
	wantAccess(t, s, "dave", w.dave.ID, repoRes(w.r3), latch.Access{})
	ggs, err := s.GroupGrants(ctx, projectRes(w.p1), "", all)
	must(t, err)
	wantList(t, "GroupGrants(P1) after deleting devs", grantGroupNames(ggs), "readers")
	// A new group does not inherit anything.
	fresh := newGroup(t, s, "devs", w.dave)
	ggs, err = s.GroupGrants(ctx, global, "", all)
	must(t, err)
	for _, g := range ggs {
		if g.Group.ID == fresh.ID {
			t.Errorf("a new group inherited grant %+v", g)
		}
	}
	wantAccess(t, s, "dave", w.dave.ID, repoRes(w.a), latch.Access{})

	// Deleting a repository deletes the grants on it.
	must(t, s.DeleteRepo(ctx, w.c.ID))
	p, err := s.DirectPermission(ctx, repoRes(w.c), userSub(w.ivy))
	must(t, err)
	if p != "" {
		t.Errorf("ivy's grant on deleted P1/c survived: %s", p)
	}
	c2 := newRepo(t, s, w.p1, "c", false)
	wantAccess(t, s, "ivy", w.ivy.ID, repoRes(c2), latch.Access{Project: read, Repo: read})

	// Deleting a project deletes the grants on it and on its repositories.
	must(t, s.DeleteProject(ctx, w.p1.ID))
	for _, u := range []*latch.User{w.bob, w.hank} {
		for _, res := range []latch.Resource{projectRes(w.p1), repoRes(w.a)} {
			p, err := s.DirectPermission(ctx, res, userSub(u))
			must(t, err)
			if p != "" {
				t.Errorf("%s's %s on %+v survived deleting P1", u.Name, p, res)
			}
		}
	}
	ggs, err = s.GroupGrants(ctx, projectRes(w.p1), "", all)
	must(t, err)
	wantList(t, "GroupGrants(P1) after deleting it", grantGroupNames(ggs))
	p1 := newProject(t, s, "P1", false)
	wantAccess(t, s, "bob", w.bob.ID, projectRes(p1), latch.Access{})
	ps, err := s.ListProjects(ctx, store.ProjectFilter{Visibility: store.Visibility{UserID: w.hank.ID}}, all)
	must(t, err)
	wantList(t, "ListProjects(hank) after deleting P1", projectKeys(ps), "P2")

	// Global grants of others are untouched.
	wantAccess(t, s, "erin", w.erin.ID, global, latch.Access{Global: admin})
	wantAccess(t, s, "frank", w.frank.ID, global, latch.Access{Global: sys})
}

func grantGroupNames(gs []store.GroupGrant) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Group.Name)
	}
	return out
}

var errBoom = errors.New("boom")

func testWithTx(t *testing.T, s store.Store) {
	// Commit.
	var uid int64
	err := s.WithTx(ctx, func(tx store.Store) error {
		u := newUser(t, tx, "alice")
		uid = u.ID
		p := newProject(t, tx, "PRJ", false)
		newRepo(t, tx, p, "repo", false)
		grant(t, tx, projectRes(p), userSub(u), latch.ProjectAdmin)
		// Reads inside the transaction see its writes.
		if _, err := tx.UserByName(ctx, "alice"); err != nil {
			t.Errorf("read own write in tx: %v", err)
		}
		return nil
	})
	must(t, err)
	if _, err := s.UserByID(ctx, uid); err != nil {
		t.Errorf("committed user: %v", err)
	}
	if _, err := s.RepoBySlug(ctx, "PRJ", "repo"); err != nil {
		t.Errorf("committed repository: %v", err)
	}

	// Rollback on error: nothing written, whatever kind of write.
	before, err := s.CountUsers(ctx)
	must(t, err)
	err = s.WithTx(ctx, func(tx store.Store) error {
		u := newUser(t, tx, "bob")
		p := newProject(t, tx, "GONE", true)
		newRepo(t, tx, p, "gone", true)
		g := newGroup(t, tx, "gone", u)
		grant(t, tx, global, groupSub(g), latch.Admin)
		must(t, tx.PutSetting(ctx, "gone", "1"))
		must(t, tx.SetPasswordHash(ctx, uid, "changed"))
		must(t, tx.DeleteUser(ctx, uid))
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("WithTx returned %v, want fn's error", err)
	}
	after, err := s.CountUsers(ctx)
	must(t, err)
	if after != before {
		t.Errorf("CountUsers after rollback = %d, want %d", after, before)
	}
	checkRolledBack(t, s, uid)

	// Rollback on panic, and the panic goes on.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("WithTx swallowed a panic")
			}
		}()
		_ = s.WithTx(ctx, func(tx store.Store) error {
			newUser(t, tx, "bob")
			panic("boom")
		})
	}()
	checkRolledBack(t, s, uid)

	// A domain error from fn comes back as it is.
	err = s.WithTx(ctx, func(tx store.Store) error {
		return tx.CreateProject(ctx, &latch.Project{Key: "prj", Name: "dup"})
	})
	wantErr(t, "WithTx returning a conflict", err, latch.ErrConflict)
}

// checkRolledBack checks that testWithTx's failed transactions left nothing.
func checkRolledBack(t *testing.T, s store.Store, uid int64) {
	t.Helper()
	if _, err := s.UserByName(ctx, "bob"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("user from a rolled-back tx: %v", err)
	}
	if _, err := s.ProjectByKey(ctx, "GONE"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("project from a rolled-back tx: %v", err)
	}
	if _, err := s.GroupByName(ctx, "gone"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("group from a rolled-back tx: %v", err)
	}
	if _, ok, err := s.Setting(ctx, "gone"); err != nil || ok {
		t.Errorf("setting from a rolled-back tx: %v %v", ok, err)
	}
	if h, err := s.PasswordHash(ctx, uid); err != nil || h != "hash-alice" {
		t.Errorf("password hash after rollback = %q, %v", h, err)
	}
	ps, err := s.ListProjects(ctx, store.ProjectFilter{Visibility: store.Visibility{All: true}}, all)
	must(t, err)
	wantList(t, "projects after rollback", projectKeys(ps), "PRJ")
	rs, err := s.ListRepos(ctx, store.RepoFilter{Visibility: store.Visibility{All: true}}, all)
	must(t, err)
	wantList(t, "repositories after rollback", repoPaths(rs), "PRJ/repo")
	ug, err := s.UserGrants(ctx, global, "", all)
	must(t, err)
	gg, err := s.GroupGrants(ctx, global, "", all)
	must(t, err)
	if len(ug)+len(gg) != 0 {
		t.Errorf("global grants after rollback: %+v %+v", ug, gg)
	}
}

func testNestedTx(t *testing.T, s store.Store) {
	err := s.WithTx(ctx, func(tx store.Store) error {
		newUser(t, tx, "outer")
		// An inner transaction that fails undoes only its own writes.
		err := tx.WithTx(ctx, func(inner store.Store) error {
			newUser(t, inner, "inner-failed")
			if _, err := inner.UserByName(ctx, "outer"); err != nil {
				t.Errorf("inner tx does not see the outer one's write: %v", err)
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("inner WithTx returned %v", err)
		}
		// An inner transaction that succeeds is part of the outer one.
		return tx.WithTx(ctx, func(inner store.Store) error {
			newUser(t, inner, "inner-ok")
			return nil
		})
	})
	must(t, err)
	us, err := s.ListUsers(ctx, store.UserFilter{}, all)
	must(t, err)
	wantList(t, "users after nested transactions", userNames(us), "inner-ok", "outer")

	// When the outer transaction fails, the inner one's writes go too.
	err = s.WithTx(ctx, func(tx store.Store) error {
		must(t, tx.WithTx(ctx, func(inner store.Store) error {
			newUser(t, inner, "doomed")
			return nil
		}))
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("WithTx returned %v", err)
	}
	if _, err := s.UserByName(ctx, "doomed"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("inner write of a rolled-back outer tx: %v", err)
	}
}

// testTxAfterConflict checks that a conflict or a missing row inside a
// transaction does not spoil it: the caller may handle the error and go on.
func testTxAfterConflict(t *testing.T, s store.Store) {
	newUser(t, s, "alice")
	p := newProject(t, s, "PRJ", false)
	newRepo(t, s, p, "repo", false)
	newGroup(t, s, "devs")
	err := s.WithTx(ctx, func(tx store.Store) error {
		wantErr(t, "CreateUser conflict in tx", tx.CreateUser(ctx, &latch.User{Name: "alice"}, ""), latch.ErrConflict)
		wantErr(t, "CreateProject conflict in tx", tx.CreateProject(ctx, &latch.Project{Key: "PRJ", Name: "x"}), latch.ErrConflict)
		wantErr(t, "CreateRepo conflict in tx", tx.CreateRepo(ctx, &latch.Repository{ProjectID: p.ID, Name: "repo"}), latch.ErrConflict)
		wantErr(t, "CreateRepo in missing project in tx", tx.CreateRepo(ctx, &latch.Repository{ProjectID: 99999, Name: "repo"}), latch.ErrNotFound)
		wantErr(t, "CreateGroup conflict in tx", tx.CreateGroup(ctx, &latch.Group{Name: "devs"}), latch.ErrConflict)
		wantErr(t, "AddGroupMember missing user in tx", tx.AddGroupMember(ctx, 99999, 99999), latch.ErrNotFound)
		wantErr(t, "SetPermission missing project in tx",
			tx.SetPermission(ctx, latch.Resource{ProjectID: 99999}, store.Subject{UserID: 1}, latch.ProjectRead), latch.ErrNotFound)
		dup := &latch.User{Name: "bob", Active: true}
		must(t, tx.CreateUser(ctx, dup, ""))
		dup.Name = "alice"
		wantErr(t, "UpdateUser conflict in tx", tx.UpdateUser(ctx, dup), latch.ErrConflict)
		newUser(t, tx, "carol")
		return nil
	})
	must(t, err)
	for _, name := range []string{"bob", "carol"} {
		if _, err := s.UserByName(ctx, name); err != nil {
			t.Errorf("write after handled errors in tx: %s: %v", name, err)
		}
	}
}

func testSettings(t *testing.T, s store.Store) {
	v, ok, err := s.Setting(ctx, "secret")
	must(t, err)
	if ok || v != "" {
		t.Errorf("Setting(missing) = %q, %v", v, ok)
	}
	must(t, s.PutSetting(ctx, "secret", "one"))
	must(t, s.PutSetting(ctx, "other", ""))
	v, ok, err = s.Setting(ctx, "secret")
	must(t, err)
	if !ok || v != "one" {
		t.Errorf("Setting(secret) = %q, %v", v, ok)
	}
	must(t, s.PutSetting(ctx, "secret", "two"))
	v, ok, err = s.Setting(ctx, "secret")
	must(t, err)
	if !ok || v != "two" {
		t.Errorf("Setting(secret) after replace = %q, %v", v, ok)
	}
	v, ok, err = s.Setting(ctx, "other")
	must(t, err)
	if !ok || v != "" {
		t.Errorf("Setting(other) = %q, %v: an empty value is still present", v, ok)
	}
	if _, ok, _ := s.Setting(ctx, "SECRET"); ok {
		t.Error("setting keys are case-sensitive")
	}
	big := make([]byte, 1<<16)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	must(t, s.PutSetting(ctx, "big", string(big)))
	v, _, err = s.Setting(ctx, "big")
	must(t, err)
	if v != string(big) {
		t.Error("a 64 KiB setting did not round-trip")
	}
}
