package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testRepos(t *testing.T, s store.Store) {
	p := newProject(t, s, "PRJ", false)
	q := newProject(t, s, "QQ", true)

	r := &latch.Repository{ProjectID: p.ID, Name: "Demo Repo", Description: "d", Public: true, DefaultBranch: "trunk"}
	must(t, s.CreateRepo(ctx, r))
	if r.ID == 0 {
		t.Fatal("CreateRepo left ID 0")
	}
	if r.Slug != "demo-repo" {
		t.Errorf("slug %q, want demo-repo", r.Slug)
	}

	check := func(what string, got *latch.Repository) {
		t.Helper()
		if got.ID != r.ID || got.ProjectID != p.ID || got.Slug != "demo-repo" || got.Name != "Demo Repo" ||
			got.Description != "d" || !got.Public || got.DefaultBranch != "trunk" {
			t.Errorf("%s = %+v", what, *got)
		}
		if got.Project == nil || *got.Project != *p {
			t.Errorf("%s: Project = %+v, want %+v", what, got.Project, *p)
		}
	}
	for _, tc := range []struct{ key, slug string }{{"PRJ", "demo-repo"}, {"prj", "demo-repo"}, {"Prj", "Demo-Repo"}} {
		got, err := s.RepoBySlug(ctx, tc.key, tc.slug)
		must(t, err)
		check(label("RepoBySlug(%s, %s)", tc.key, tc.slug), got)
	}
	got, err := s.RepoByID(ctx, r.ID)
	must(t, err)
	check("RepoByID", got)

	_, err = s.RepoBySlug(ctx, "PRJ", "nope")
	wantException(t, "RepoBySlug(PRJ, nope)", err, latch.ErrNotFound, latch.ExNoSuchRepository)
	_, err = s.RepoBySlug(ctx, "NOPE", "demo-repo")
	wantException(t, "RepoBySlug(NOPE, demo-repo)", err, latch.ErrNotFound, latch.ExNoSuchProject)
	_, err = s.RepoBySlug(ctx, "QQ", "demo-repo")
	wantErr(t, "RepoBySlug in the wrong project", err, latch.ErrNotFound)
	_, err = s.RepoByID(ctx, 77777)
	wantErr(t, "RepoByID(missing)", err, latch.ErrNotFound)

	// Slugs are unique within a project only.
	wantErr(t, "CreateRepo same name", s.CreateRepo(ctx, &latch.Repository{ProjectID: p.ID, Name: "Demo Repo"}), latch.ErrConflict)
	wantErr(t, "CreateRepo same slug", s.CreateRepo(ctx, &latch.Repository{ProjectID: p.ID, Name: "demo  repo!"}), latch.ErrConflict)
	other := newRepo(t, s, q, "Demo Repo", false)
	if other.Slug != "demo-repo" {
		t.Errorf("slug in other project %q", other.Slug)
	}
	wantErr(t, "CreateRepo in a missing project", s.CreateRepo(ctx, &latch.Repository{ProjectID: 77777, Name: "x"}), latch.ErrNotFound)
	wantErr(t, "CreateRepo with no name", s.CreateRepo(ctx, &latch.Repository{ProjectID: p.ID}), latch.ErrInvalid)
	explicit := &latch.Repository{ProjectID: p.ID, Name: "Whatever", Slug: "My.Slug"}
	must(t, s.CreateRepo(ctx, explicit))
	got, err = s.RepoBySlug(ctx, "PRJ", "my.slug")
	must(t, err)
	if got.ID != explicit.ID || got.Name != "Whatever" {
		t.Errorf("RepoBySlug(explicit slug) = %+v", *got)
	}

	must(t, s.DeleteRepo(ctx, r.ID))
	_, err = s.RepoByID(ctx, r.ID)
	wantErr(t, "RepoByID after delete", err, latch.ErrNotFound)
	wantErr(t, "DeleteRepo twice", s.DeleteRepo(ctx, r.ID), latch.ErrNotFound)
	again := newRepo(t, s, p, "Demo Repo", false)
	if again.ID == r.ID {
		t.Errorf("a new repository reused the deleted one's id %d", r.ID)
	}
}

func testUpdateRepo(t *testing.T, s store.Store) {
	p := newProject(t, s, "PRJ", false)
	q := newProject(t, s, "QQ", false)
	r := newRepo(t, s, p, "one", false)
	newRepo(t, s, p, "two", false)
	newRepo(t, s, q, "three", false)

	r.Name, r.Slug, r.Description, r.Public, r.DefaultBranch = "Uno Repo", "", "new", true, "dev"
	must(t, s.UpdateRepo(ctx, r))
	if r.Slug != "uno-repo" {
		t.Errorf("slug after rename %q, want uno-repo", r.Slug)
	}
	got, err := s.RepoBySlug(ctx, "PRJ", "uno-repo")
	must(t, err)
	if got.ID != r.ID || got.Name != "Uno Repo" || got.Description != "new" || !got.Public || got.DefaultBranch != "dev" {
		t.Errorf("after update %+v", *got)
	}
	_, err = s.RepoBySlug(ctx, "PRJ", "one")
	wantErr(t, "old slug", err, latch.ErrNotFound)

	clash := *r
	clash.Name, clash.Slug = "two", ""
	wantErr(t, "UpdateRepo onto a sibling's slug", s.UpdateRepo(ctx, &clash), latch.ErrConflict)
	ghost := latch.Repository{ID: 77777, ProjectID: p.ID, Name: "ghost"}
	wantErr(t, "UpdateRepo(missing)", s.UpdateRepo(ctx, &ghost), latch.ErrNotFound)

	// Moving to another project, with a clash there, then without.
	moved := *r
	moved.ProjectID, moved.Name, moved.Slug = q.ID, "three", ""
	wantErr(t, "move onto a slug taken in the target", s.UpdateRepo(ctx, &moved), latch.ErrConflict)
	moved.ProjectID = 77777
	wantErr(t, "move to a missing project", s.UpdateRepo(ctx, &moved), latch.ErrNotFound)
	moved.ProjectID, moved.Name, moved.Slug = q.ID, "Uno Repo", ""
	must(t, s.UpdateRepo(ctx, &moved))
	got, err = s.RepoBySlug(ctx, "QQ", "uno-repo")
	must(t, err)
	if got.ID != r.ID || got.ProjectID != q.ID || got.Project == nil || got.Project.Key != "QQ" {
		t.Errorf("after move %+v", *got)
	}
	_, err = s.RepoBySlug(ctx, "PRJ", "uno-repo")
	wantErr(t, "moved repository in its old project", err, latch.ErrNotFound)
}

func testListRepos(t *testing.T, s store.Store) {
	b := newProject(t, s, "BBB", false)
	a := newProject(t, s, "aaa", false)
	newRepo(t, s, b, "zeta", false)
	newRepo(t, s, b, "Alpha", false)
	newRepo(t, s, a, "mid", false)
	newRepo(t, s, a, "web_app", false)
	newRepo(t, s, a, "webxapp", false)

	v := store.Visibility{All: true}
	rs, err := s.ListRepos(ctx, store.RepoFilter{Visibility: v}, all)
	must(t, err)
	wantList(t, "ListRepos (by project key, then slug)", repoPaths(rs), "aaa/mid", "aaa/web_app", "aaa/webxapp", "BBB/alpha", "BBB/zeta")
	for _, r := range rs {
		if r.Project == nil || r.Project.ID != r.ProjectID || r.Project.Name == "" {
			t.Errorf("ListRepos: %s has Project %+v", r.Slug, r.Project)
		}
	}
	rs, err = s.ListRepos(ctx, store.RepoFilter{ProjectID: b.ID, Visibility: v}, all)
	must(t, err)
	wantList(t, "ListRepos(project BBB)", repoPaths(rs), "BBB/alpha", "BBB/zeta")
	rs, err = s.ListRepos(ctx, store.RepoFilter{Name: "ALP", Visibility: v}, all)
	must(t, err)
	wantList(t, "ListRepos(name ALP)", repoPaths(rs), "BBB/alpha")
	rs, err = s.ListRepos(ctx, store.RepoFilter{Name: "b_a", Visibility: v}, all)
	must(t, err)
	wantList(t, "ListRepos(name b_a)", repoPaths(rs), "aaa/web_app")
	rs, err = s.ListRepos(ctx, store.RepoFilter{ProjectID: a.ID, Name: "web", Visibility: v}, page(1, 5))
	must(t, err)
	wantList(t, "ListRepos(project aaa, name web) page(1,5)", repoPaths(rs), "aaa/webxapp")
	rs, err = s.ListRepos(ctx, store.RepoFilter{Visibility: v}, page(0, 2))
	must(t, err)
	wantList(t, "ListRepos page(0,2)", repoPaths(rs), "aaa/mid", "aaa/web_app", "aaa/webxapp")
	rs, err = s.ListRepos(ctx, store.RepoFilter{Visibility: v}, page(4, 2))
	must(t, err)
	wantList(t, "ListRepos page(4,2)", repoPaths(rs), "BBB/zeta")
	rs, err = s.ListRepos(ctx, store.RepoFilter{ProjectID: 77777, Visibility: v}, all)
	must(t, err)
	wantList(t, "ListRepos(missing project)", repoPaths(rs))
}
