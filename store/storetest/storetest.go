// Package storetest is the conformance suite of store.Store: every
// implementation runs it from its own tests, so that all of them behave the
// same (CRUD of every entity, domain errors, paging, case rules, access
// inheritance, visibility, transactions, cascades and settings).
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmpty(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// Run runs the conformance suite against the stores open returns. open is
// called once per subtest, possibly from parallel subtests, and must return a
// new, empty, migrated store; Run closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"UserLookups", testUserLookups},
		{"UpdateUser", testUpdateUser},
		{"ListUsers", testListUsers},
		{"Passwords", testPasswords},
		{"Groups", testGroups},
		{"GroupMembers", testGroupMembers},
		{"Projects", testProjects},
		{"ListProjects", testListProjects},
		{"Repos", testRepos},
		{"UpdateRepo", testUpdateRepo},
		{"ListRepos", testListRepos},
		{"Permissions", testPermissions},
		{"PermissionErrors", testPermissionErrors},
		{"GrantListings", testGrantListings},
		{"Access", testAccess},
		{"AccessAfterChanges", testAccessAfterChanges},
		{"VisibleProjects", testVisibleProjects},
		{"VisibleRepos", testVisibleRepos},
		{"CascadeDeletes", testCascadeDeletes},
		{"WithTx", testWithTx},
		{"NestedTx", testNestedTx},
		{"TxAfterConflict", testTxAfterConflict},
		{"Settings", testSettings},
		{"SSHKeys", testSSHKeys},
		{"AccessKeys", testAccessKeys},
		{"MailOutbox", testMailOutbox},
		{"TokenAuth", testTokenAuth},
		{"Reminders", testReminders},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err wraps kind (latch.ErrNotFound, ...).
func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, kind)
	}
}

// wantException checks that err is a *latch.Error of kind with exception ex.
func wantException(t *testing.T, what string, err, kind error, ex string) {
	t.Helper()
	wantErr(t, what, err, kind)
	var de *latch.Error
	if !errors.As(err, &de) {
		t.Errorf("%s: error %v is not a *latch.Error", what, err)
		return
	}
	if de.Exception != ex {
		t.Errorf("%s: exception %q, want %q (message %q)", what, de.Exception, ex, de.Message)
	}
}

func newUser(t *testing.T, s store.Store, name string) *latch.User {
	t.Helper()
	u := &latch.User{Name: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], Email: name + "@example.com", Active: true, Type: latch.UserNormal}
	must(t, s.CreateUser(ctx, u, "hash-"+name))
	return u
}

func newGroup(t *testing.T, s store.Store, name string, members ...*latch.User) *latch.Group {
	t.Helper()
	g := &latch.Group{Name: name}
	must(t, s.CreateGroup(ctx, g))
	for _, u := range members {
		must(t, s.AddGroupMember(ctx, g.ID, u.ID))
	}
	return g
}

func newProject(t *testing.T, s store.Store, key string, public bool) *latch.Project {
	t.Helper()
	p := &latch.Project{Key: key, Name: "Project " + key, Description: "about " + key, Public: public}
	must(t, s.CreateProject(ctx, p))
	return p
}

func newRepo(t *testing.T, s store.Store, p *latch.Project, name string, public bool) *latch.Repository {
	t.Helper()
	r := &latch.Repository{ProjectID: p.ID, Name: name, Description: "repo " + name, Public: public, DefaultBranch: "main"}
	must(t, s.CreateRepo(ctx, r))
	return r
}

func grant(t *testing.T, s store.Store, r latch.Resource, sub store.Subject, p latch.Permission) {
	t.Helper()
	must(t, s.SetPermission(ctx, r, sub, p))
}

func userSub(u *latch.User) store.Subject   { return store.Subject{UserID: u.ID} }
func groupSub(g *latch.Group) store.Subject { return store.Subject{GroupID: g.ID} }
func projectRes(p *latch.Project) latch.Resource {
	return latch.Resource{ProjectID: p.ID}
}
func repoRes(r *latch.Repository) latch.Resource {
	return latch.Resource{ProjectID: r.ProjectID, RepoID: r.ID}
}

var global = latch.Resource{}

// names returns a comparable list from any listing.
func userNames(us []latch.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

func groupNames(gs []latch.Group) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func projectKeys(ps []latch.Project) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

func repoPaths(rs []latch.Repository) []string {
	out := []string{}
	for _, r := range rs {
		key := "?"
		if r.Project != nil {
			key = r.Project.Key
		}
		out = append(out, key+"/"+r.Slug)
	}
	return out
}

func wantList(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func page(start, limit int) store.Page { return store.Page{Start: start, Limit: limit} }

var all = store.Page{}

func label(format string, args ...any) string { return fmt.Sprintf(format, args...) }
