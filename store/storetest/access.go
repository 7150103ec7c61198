package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// world is a fixture covering every access rule:
//
//	P1 private: a private, b public, c private
//	P2 public:  r2 private (public through its project)
//	P3 private: r3 private
//	P4 private: r4 private (nobody but global admins)
//
//	alice  no grants
//	bob    PROJECT_READ on P1
//	carol  REPO_WRITE on P1/a
//	dave   member of devs: PROJECT_WRITE on P1, REPO_ADMIN on P3/r3
//	erin   ADMIN (global)
//	frank  member of admins: SYS_ADMIN (global)
//	gina   PROJECT_CREATE (global), member of licensed: LICENSED_USER
//	hank   PROJECT_ADMIN on P1 and REPO_READ on P1/a
//	ivy    member of readers: PROJECT_READ on P1; REPO_ADMIN on P1/c
//	judy   member of devs and of readers
//
// Every grant of devs, admins, licensed and readers is stored with user id
// 0: anonymous users must not pick them up.
type world struct {
	p1, p2, p3, p4                  *latch.Project
	a, b, c, r2, r3, r4             *latch.Repository
	alice, bob, carol, dave, erin   *latch.User
	frank, gina, hank, ivy, judy    *latch.User
	devs, admins, licensed, readers *latch.Group
}

func buildWorld(t *testing.T, s store.Store) *world {
	t.Helper()
	w := &world{}
	w.p1 = newProject(t, s, "P1", false)
	w.p2 = newProject(t, s, "P2", true)
	w.p3 = newProject(t, s, "P3", false)
	w.p4 = newProject(t, s, "P4", false)
	w.a = newRepo(t, s, w.p1, "a", false)
	w.b = newRepo(t, s, w.p1, "b", true)
	w.c = newRepo(t, s, w.p1, "c", false)
	w.r2 = newRepo(t, s, w.p2, "r2", false)
	w.r3 = newRepo(t, s, w.p3, "r3", false)
	w.r4 = newRepo(t, s, w.p4, "r4", false)

	w.alice = newUser(t, s, "alice")
	w.bob = newUser(t, s, "bob")
	w.carol = newUser(t, s, "carol")
	w.dave = newUser(t, s, "dave")
	w.erin = newUser(t, s, "erin")
	w.frank = newUser(t, s, "frank")
	w.gina = newUser(t, s, "gina")
	w.hank = newUser(t, s, "hank")
	w.ivy = newUser(t, s, "ivy")
	w.judy = newUser(t, s, "judy")
	w.devs = newGroup(t, s, "devs", w.dave, w.judy)
	w.admins = newGroup(t, s, "admins", w.frank)
	w.licensed = newGroup(t, s, "licensed", w.gina)
	w.readers = newGroup(t, s, "readers", w.ivy, w.judy)

	grant(t, s, projectRes(w.p1), userSub(w.bob), latch.ProjectRead)
	grant(t, s, repoRes(w.a), userSub(w.carol), latch.RepoWrite)
	grant(t, s, projectRes(w.p1), groupSub(w.devs), latch.ProjectWrite)
	grant(t, s, repoRes(w.r3), groupSub(w.devs), latch.RepoAdmin)
	grant(t, s, global, userSub(w.erin), latch.Admin)
	grant(t, s, global, groupSub(w.admins), latch.SysAdmin)
	grant(t, s, global, userSub(w.gina), latch.ProjectCreate)
	grant(t, s, global, groupSub(w.licensed), latch.LicensedUser)
	grant(t, s, projectRes(w.p1), userSub(w.hank), latch.ProjectAdmin)
	grant(t, s, repoRes(w.a), userSub(w.hank), latch.RepoRead)
	grant(t, s, projectRes(w.p1), groupSub(w.readers), latch.ProjectRead)
	grant(t, s, repoRes(w.c), userSub(w.ivy), latch.RepoAdmin)
	return w
}

const (
	none  = latch.LevelNone
	read  = latch.LevelRead
	write = latch.LevelWrite
	admin = latch.LevelAdmin
	sys   = latch.LevelSysAdmin
)

func wantAccess(t *testing.T, s store.Store, who string, userID int64, r latch.Resource, want latch.Access) {
	t.Helper()
	got, err := s.Access(ctx, userID, r)
	if err != nil {
		t.Errorf("Access(%s, %+v): %v", who, r, err)
		return
	}
	if got != want {
		t.Errorf("Access(%s, %+v) = %+v, want %+v", who, r, got, want)
	}
}

func testAccess(t *testing.T, s store.Store) {
	w := buildWorld(t, s)
	type row struct {
		who  string
		user int64
		res  latch.Resource
		want latch.Access
	}
	P := projectRes
	R := repoRes
	rows := []row{
		// Anonymous: public only, never group grants (stored with user id 0).
		{"anonymous", 0, global, latch.Access{}},
		{"anonymous", 0, P(w.p1), latch.Access{}},
		{"anonymous", 0, R(w.a), latch.Access{}},
		{"anonymous", 0, R(w.b), latch.Access{Repo: read}},
		{"anonymous", 0, R(w.c), latch.Access{}},
		{"anonymous", 0, P(w.p2), latch.Access{Project: read}},
		{"anonymous", 0, R(w.r2), latch.Access{Project: read, Repo: read}},
		{"anonymous", 0, P(w.p3), latch.Access{}},
		{"anonymous", 0, R(w.r3), latch.Access{}},
		{"anonymous", 0, R(w.r4), latch.Access{}},
		{"anonymous", 0, latch.Resource{RepoID: w.b.ID}, latch.Access{Repo: read}},

		// A user without grants sees what anonymous users see.
		{"alice", w.alice.ID, global, latch.Access{}},
		{"alice", w.alice.ID, P(w.p1), latch.Access{}},
		{"alice", w.alice.ID, R(w.a), latch.Access{}},
		{"alice", w.alice.ID, R(w.b), latch.Access{Repo: read}},
		{"alice", w.alice.ID, P(w.p2), latch.Access{Project: read}},
		{"alice", w.alice.ID, R(w.r2), latch.Access{Project: read, Repo: read}},
		{"alice", w.alice.ID, R(w.r3), latch.Access{}},

		// A project grant applies to every repository in it.
		{"bob", w.bob.ID, global, latch.Access{}},
		{"bob", w.bob.ID, P(w.p1), latch.Access{Project: read}},
		{"bob", w.bob.ID, R(w.a), latch.Access{Project: read, Repo: read}},
		{"bob", w.bob.ID, R(w.c), latch.Access{Project: read, Repo: read}},
		{"bob", w.bob.ID, latch.Resource{RepoID: w.c.ID}, latch.Access{Repo: read}},
		{"bob", w.bob.ID, P(w.p3), latch.Access{}},
		{"bob", w.bob.ID, R(w.r2), latch.Access{Project: read, Repo: read}},

		// A repository grant: that repository, and read on its project only.
		{"carol", w.carol.ID, P(w.p1), latch.Access{Project: read}},
		{"carol", w.carol.ID, R(w.a), latch.Access{Project: read, Repo: write}},
		{"carol", w.carol.ID, R(w.b), latch.Access{Project: read, Repo: read}},
		{"carol", w.carol.ID, R(w.c), latch.Access{Project: read}},
		{"carol", w.carol.ID, P(w.p3), latch.Access{}},

		// Group grants, on a project and on a repository.
		{"dave", w.dave.ID, global, latch.Access{}},
		{"dave", w.dave.ID, P(w.p1), latch.Access{Project: write}},
		{"dave", w.dave.ID, R(w.a), latch.Access{Project: write, Repo: write}},
		{"dave", w.dave.ID, R(w.c), latch.Access{Project: write, Repo: write}},
		{"dave", w.dave.ID, P(w.p3), latch.Access{Project: read}},
		{"dave", w.dave.ID, R(w.r3), latch.Access{Project: read, Repo: admin}},
		{"dave", w.dave.ID, R(w.r4), latch.Access{}},

		// Global admins administer every project and repository that is named.
		{"erin", w.erin.ID, global, latch.Access{Global: admin}},
		{"erin", w.erin.ID, P(w.p4), latch.Access{Global: admin, Project: admin}},
		{"erin", w.erin.ID, R(w.r4), latch.Access{Global: admin, Project: admin, Repo: admin}},
		{"erin", w.erin.ID, latch.Resource{RepoID: w.r4.ID}, latch.Access{Global: admin, Repo: admin}},
		{"frank", w.frank.ID, global, latch.Access{Global: sys}},
		{"frank", w.frank.ID, P(w.p3), latch.Access{Global: sys, Project: admin}},
		{"frank", w.frank.ID, R(w.r3), latch.Access{Global: sys, Project: admin, Repo: admin}},

		// Lesser global permissions give nothing on projects.
		{"gina", w.gina.ID, global, latch.Access{Global: write}},
		{"gina", w.gina.ID, P(w.p1), latch.Access{Global: write}},
		{"gina", w.gina.ID, R(w.a), latch.Access{Global: write}},
		{"gina", w.gina.ID, R(w.r2), latch.Access{Global: write, Project: read, Repo: read}},

		// The highest of several grants wins.
		{"hank", w.hank.ID, P(w.p1), latch.Access{Project: admin}},
		{"hank", w.hank.ID, R(w.a), latch.Access{Project: admin, Repo: admin}},
		{"ivy", w.ivy.ID, P(w.p1), latch.Access{Project: read}},
		{"ivy", w.ivy.ID, R(w.a), latch.Access{Project: read, Repo: read}},
		{"ivy", w.ivy.ID, R(w.c), latch.Access{Project: read, Repo: admin}},
		{"judy", w.judy.ID, P(w.p1), latch.Access{Project: write}},
		{"judy", w.judy.ID, R(w.b), latch.Access{Project: write, Repo: write}},
		{"judy", w.judy.ID, R(w.r3), latch.Access{Project: read, Repo: admin}},

		// Unknown users and resources hold nothing.
		{"unknown user", 123456, P(w.p1), latch.Access{}},
		{"unknown user", 123456, R(w.r2), latch.Access{Project: read, Repo: read}},
		{"bob", w.bob.ID, latch.Resource{ProjectID: 123456}, latch.Access{}},
		{"bob", w.bob.ID, latch.Resource{ProjectID: w.p1.ID, RepoID: 123456}, latch.Access{Project: read}},
		{"anonymous", 0, latch.Resource{ProjectID: 123456, RepoID: 123457}, latch.Access{}},
	}
	for _, tc := range rows {
		wantAccess(t, s, tc.who, tc.user, tc.res, tc.want)
	}
}

// testAccessAfterChanges checks that access follows changes at once:
// publicity, membership, revocation, moves.
func testAccessAfterChanges(t *testing.T, s store.Store) {
	w := buildWorld(t, s)

	// Making a project public opens it and its repositories to everyone.
	w.p3.Public = true
	must(t, s.UpdateProject(ctx, w.p3))
	wantAccess(t, s, "anonymous", 0, repoRes(w.r3), latch.Access{Project: read, Repo: read})
	wantAccess(t, s, "dave", w.dave.ID, repoRes(w.r3), latch.Access{Project: read, Repo: admin})
	w.p3.Public = false
	must(t, s.UpdateProject(ctx, w.p3))
	wantAccess(t, s, "anonymous", 0, repoRes(w.r3), latch.Access{})

	// Likewise a repository.
	w.c.Public = true
	must(t, s.UpdateRepo(ctx, w.c))
	wantAccess(t, s, "alice", w.alice.ID, repoRes(w.c), latch.Access{Repo: read})

	// Leaving a group drops its grants.
	must(t, s.RemoveGroupMember(ctx, w.devs.ID, w.dave.ID))
	wantAccess(t, s, "dave", w.dave.ID, repoRes(w.a), latch.Access{})
	must(t, s.AddGroupMember(ctx, w.devs.ID, w.dave.ID))
	wantAccess(t, s, "dave", w.dave.ID, repoRes(w.a), latch.Access{Project: write, Repo: write})

	// Revoking a global grant.
	must(t, s.RevokePermission(ctx, global, userSub(w.erin)))
	wantAccess(t, s, "erin", w.erin.ID, repoRes(w.r4), latch.Access{})

	// Moving a repository takes its grants along, and out of the old project.
	w.a.ProjectID = w.p4.ID
	must(t, s.UpdateRepo(ctx, w.a))
	wantAccess(t, s, "carol", w.carol.ID, repoRes(w.a), latch.Access{Project: read, Repo: write})
	wantAccess(t, s, "carol", w.carol.ID, projectRes(w.p1), latch.Access{})
	wantAccess(t, s, "bob", w.bob.ID, repoRes(w.a), latch.Access{})
	rs, err := s.ListRepos(ctx, store.RepoFilter{Visibility: store.Visibility{UserID: w.carol.ID}}, all)
	must(t, err)
	wantList(t, "ListRepos(carol) after the move", repoPaths(rs), "P1/b", "P1/c", "P2/r2", "P4/a")
	ps, err := s.ListProjects(ctx, store.ProjectFilter{Visibility: store.Visibility{UserID: w.carol.ID}}, all)
	must(t, err)
	wantList(t, "ListProjects(carol) after the move", projectKeys(ps), "P2", "P4")
}

func testVisibleProjects(t *testing.T, s store.Store) {
	w := buildWorld(t, s)
	for _, tc := range []struct {
		who  string
		v    store.Visibility
		want []string
	}{
		{"everything", store.Visibility{All: true}, []string{"P1", "P2", "P3", "P4"}},
		{"anonymous", store.Visibility{}, []string{"P2"}},
		{"alice", store.Visibility{UserID: w.alice.ID}, []string{"P2"}},
		{"bob", store.Visibility{UserID: w.bob.ID}, []string{"P1", "P2"}},
		{"carol", store.Visibility{UserID: w.carol.ID}, []string{"P1", "P2"}},
		{"dave", store.Visibility{UserID: w.dave.ID}, []string{"P1", "P2", "P3"}},
		{"erin", store.Visibility{UserID: w.erin.ID}, []string{"P1", "P2", "P3", "P4"}},
		{"frank", store.Visibility{UserID: w.frank.ID}, []string{"P1", "P2", "P3", "P4"}},
		{"gina", store.Visibility{UserID: w.gina.ID}, []string{"P2"}},
		{"ivy", store.Visibility{UserID: w.ivy.ID}, []string{"P1", "P2"}},
		{"unknown user", store.Visibility{UserID: 123456}, []string{"P2"}},
	} {
		ps, err := s.ListProjects(ctx, store.ProjectFilter{Visibility: tc.v}, all)
		must(t, err)
		wantList(t, "ListProjects visible to "+tc.who, projectKeys(ps), tc.want...)
	}
	// Paging applies after visibility.
	v := store.Visibility{UserID: w.dave.ID}
	ps, err := s.ListProjects(ctx, store.ProjectFilter{Visibility: v}, page(0, 1))
	must(t, err)
	wantList(t, "ListProjects(dave) page(0,1)", projectKeys(ps), "P1", "P2")
	ps, err = s.ListProjects(ctx, store.ProjectFilter{Visibility: v}, page(2, 1))
	must(t, err)
	wantList(t, "ListProjects(dave) page(2,1)", projectKeys(ps), "P3")
	ps, err = s.ListProjects(ctx, store.ProjectFilter{Name: "project p3", Visibility: store.Visibility{UserID: w.bob.ID}}, all)
	must(t, err)
	wantList(t, "ListProjects(bob, name P3)", projectKeys(ps))
}

func testVisibleRepos(t *testing.T, s store.Store) {
	w := buildWorld(t, s)
	everything := []string{"P1/a", "P1/b", "P1/c", "P2/r2", "P3/r3", "P4/r4"}
	for _, tc := range []struct {
		who  string
		v    store.Visibility
		want []string
	}{
		{"everything", store.Visibility{All: true}, everything},
		{"anonymous", store.Visibility{}, []string{"P1/b", "P2/r2"}},
		{"alice", store.Visibility{UserID: w.alice.ID}, []string{"P1/b", "P2/r2"}},
		{"bob", store.Visibility{UserID: w.bob.ID}, []string{"P1/a", "P1/b", "P1/c", "P2/r2"}},
		{"carol", store.Visibility{UserID: w.carol.ID}, []string{"P1/a", "P1/b", "P2/r2"}},
		{"dave", store.Visibility{UserID: w.dave.ID}, []string{"P1/a", "P1/b", "P1/c", "P2/r2", "P3/r3"}},
		{"erin", store.Visibility{UserID: w.erin.ID}, everything},
		{"frank", store.Visibility{UserID: w.frank.ID}, everything},
		{"gina", store.Visibility{UserID: w.gina.ID}, []string{"P1/b", "P2/r2"}},
		{"ivy", store.Visibility{UserID: w.ivy.ID}, []string{"P1/a", "P1/b", "P1/c", "P2/r2"}},
		{"unknown user", store.Visibility{UserID: 123456}, []string{"P1/b", "P2/r2"}},
	} {
		rs, err := s.ListRepos(ctx, store.RepoFilter{Visibility: tc.v}, all)
		must(t, err)
		wantList(t, "ListRepos visible to "+tc.who, repoPaths(rs), tc.want...)
	}
	rs, err := s.ListRepos(ctx, store.RepoFilter{ProjectID: w.p1.ID, Visibility: store.Visibility{UserID: w.carol.ID}}, all)
	must(t, err)
	wantList(t, "ListRepos(carol, P1)", repoPaths(rs), "P1/a", "P1/b")
	rs, err = s.ListRepos(ctx, store.RepoFilter{ProjectID: w.p3.ID}, all)
	must(t, err)
	wantList(t, "ListRepos(anonymous, P3)", repoPaths(rs))
	// Paging applies after visibility.
	v := store.Visibility{UserID: w.carol.ID}
	rs, err = s.ListRepos(ctx, store.RepoFilter{Visibility: v}, page(0, 2))
	must(t, err)
	wantList(t, "ListRepos(carol) page(0,2)", repoPaths(rs), "P1/a", "P1/b", "P2/r2")
	rs, err = s.ListRepos(ctx, store.RepoFilter{Visibility: v}, page(2, 2))
	must(t, err)
	wantList(t, "ListRepos(carol) page(2,2)", repoPaths(rs), "P2/r2")
	rs, err = s.ListRepos(ctx, store.RepoFilter{Visibility: store.Visibility{}}, page(1, 1))
	must(t, err)
	wantList(t, "ListRepos(anonymous) page(1,1)", repoPaths(rs), "P2/r2")
}
