package storetest

import (
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testProjects(t *testing.T, s store.Store) {
	p := &latch.Project{Key: "PRJ", Name: "My Project", Description: "desc", Public: true}
	must(t, s.CreateProject(ctx, p))
	if p.ID == 0 {
		t.Fatal("CreateProject left ID 0")
	}
	for _, key := range []string{"PRJ", "prj", "Prj"} {
		got, err := s.ProjectByKey(ctx, key)
		must(t, err)
		if *got != *p {
			t.Errorf("ProjectByKey(%q) = %+v, want %+v", key, *got, *p)
		}
	}
	got, err := s.ProjectByID(ctx, p.ID)
	must(t, err)
	if *got != *p {
		t.Errorf("ProjectByID = %+v, want %+v", *got, *p)
	}
	_, err = s.ProjectByKey(ctx, "NOPE")
	wantException(t, "ProjectByKey(NOPE)", err, latch.ErrNotFound, latch.ExNoSuchProject)
	_, err = s.ProjectByID(ctx, 55555)
	wantErr(t, "ProjectByID(missing)", err, latch.ErrNotFound)

	// Keys and names are unique case-insensitively.
	for _, dup := range []latch.Project{
		{Key: "PRJ", Name: "Other"},
		{Key: "prj", Name: "Other"},
		{Key: "OTHER", Name: "My Project"},
		{Key: "OTHER", Name: "MY PROJECT"},
	} {
		err := s.CreateProject(ctx, &dup)
		wantErr(t, label("CreateProject(%s, %q)", dup.Key, dup.Name), err, latch.ErrConflict)
	}
	wantErr(t, "CreateProject with no key", s.CreateProject(ctx, &latch.Project{Name: "x"}), latch.ErrInvalid)
	wantErr(t, "CreateProject with no name", s.CreateProject(ctx, &latch.Project{Key: "X"}), latch.ErrInvalid)

	// The key is stored as given.
	lower := &latch.Project{Key: "low", Name: "Lower"}
	must(t, s.CreateProject(ctx, lower))
	got, err = s.ProjectByKey(ctx, "LOW")
	must(t, err)
	if got.Key != "low" || got.Public {
		t.Errorf("ProjectByKey(LOW) = %+v", *got)
	}

	// Update.
	p.Key, p.Name, p.Description, p.Public = "NEW", "Renamed", "", false
	must(t, s.UpdateProject(ctx, p))
	got, err = s.ProjectByKey(ctx, "new")
	must(t, err)
	if *got != *p {
		t.Errorf("after update ProjectByKey = %+v, want %+v", *got, *p)
	}
	_, err = s.ProjectByKey(ctx, "PRJ")
	wantErr(t, "old key after update", err, latch.ErrNotFound)
	must(t, s.UpdateProject(ctx, p)) // unchanged: fine
	clash := *p
	clash.Key = "LOW"
	wantErr(t, "UpdateProject onto another's key", s.UpdateProject(ctx, &clash), latch.ErrConflict)
	clash = *p
	clash.Name = "lower"
	wantErr(t, "UpdateProject onto another's name", s.UpdateProject(ctx, &clash), latch.ErrConflict)
	ghost := latch.Project{ID: 55555, Key: "GHOST", Name: "Ghost"}
	wantErr(t, "UpdateProject(missing)", s.UpdateProject(ctx, &ghost), latch.ErrNotFound)

	// Delete takes the repositories along.
	r := newRepo(t, s, p, "Repo", false)
	must(t, s.DeleteProject(ctx, p.ID))
	_, err = s.ProjectByID(ctx, p.ID)
	wantErr(t, "ProjectByID after delete", err, latch.ErrNotFound)
	_, err = s.RepoByID(ctx, r.ID)
	wantErr(t, "RepoByID after deleting its project", err, latch.ErrNotFound)
	wantErr(t, "DeleteProject twice", s.DeleteProject(ctx, p.ID), latch.ErrNotFound)
	// Key and name are free again.
	must(t, s.CreateProject(ctx, &latch.Project{Key: "NEW", Name: "Renamed"}))
}

func testListProjects(t *testing.T, s store.Store) {
	for _, key := range []string{"CCC", "aaa", "BBB", "DDD"} {
		newProject(t, s, key, false)
	}
	v := store.Visibility{All: true}
	ps, err := s.ListProjects(ctx, store.ProjectFilter{Visibility: v}, all)
	must(t, err)
	wantList(t, "ListProjects (ordered by key)", projectKeys(ps), "aaa", "BBB", "CCC", "DDD")
	if ps[0].Name != "Project aaa" || ps[0].Description != "about aaa" {
		t.Errorf("listed project %+v", ps[0])
	}
	ps, err = s.ListProjects(ctx, store.ProjectFilter{Name: "project b", Visibility: v}, all)
	must(t, err)
	wantList(t, "ListProjects(name 'project b')", projectKeys(ps), "BBB")
	ps, err = s.ListProjects(ctx, store.ProjectFilter{Name: "%", Visibility: v}, all)
	must(t, err)
	wantList(t, "ListProjects(name '%')", projectKeys(ps))
	ps, err = s.ListProjects(ctx, store.ProjectFilter{Visibility: v}, page(1, 2))
	must(t, err)
	wantList(t, "ListProjects page(1,2)", projectKeys(ps), "BBB", "CCC", "DDD")
	ps, err = s.ListProjects(ctx, store.ProjectFilter{Visibility: v}, page(2, 2))
	must(t, err)
	wantList(t, "ListProjects page(2,2)", projectKeys(ps), "CCC", "DDD")
}
