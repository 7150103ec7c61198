package storetest

import (
	"strings"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func testUsers(t *testing.T, s store.Store) {
	n, err := s.CountUsers(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("CountUsers on an empty store = %d", n)
	}

	u := &latch.User{Name: "Alice.Smith", DisplayName: "Alice Smith", Email: "Alice@Example.COM", Active: true}
	must(t, s.CreateUser(ctx, u, "h1"))
	if u.ID == 0 {
		t.Fatal("CreateUser left ID 0")
	}
	if u.Slug != latch.UserSlug("Alice.Smith") {
		t.Errorf("slug %q, want %q", u.Slug, latch.UserSlug("Alice.Smith"))
	}
	if u.Type != latch.UserNormal {
		t.Errorf("type %q, want the default %q", u.Type, latch.UserNormal)
	}
	if u.CreatedAt == 0 {
		t.Error("CreatedAt not set")
	}
	svc := &latch.User{Name: "svc", Type: latch.UserService, Active: true, CreatedAt: 1234}
	must(t, s.CreateUser(ctx, svc, ""))
	if svc.ID == 0 || svc.ID == u.ID {
		t.Fatalf("second user id %d (first %d)", svc.ID, u.ID)
	}

	got, err := s.UserByID(ctx, u.ID)
	must(t, err)
	if *got != *u {
		t.Errorf("UserByID = %+v, want %+v", *got, *u)
	}
	got, err = s.UserByID(ctx, svc.ID)
	must(t, err)
	if got.Type != latch.UserService || got.CreatedAt != 1234 || got.Email != "" || !got.Active {
		t.Errorf("service user read back as %+v", *got)
	}

	// Conflicts: same name; a name differing only in case has the same slug.
	for _, name := range []string{"Alice.Smith", "alice.smith"} {
		err := s.CreateUser(ctx, &latch.User{Name: name, Active: true}, "")
		wantErr(t, label("CreateUser(%q) again", name), err, latch.ErrConflict)
	}
	wantErr(t, "CreateUser with no name", s.CreateUser(ctx, &latch.User{}, ""), latch.ErrInvalid)
	// One user per email address, case-insensitively; users without one
	// (service users) do not collide.
	err = s.CreateUser(ctx, &latch.User{Name: "alice2", Email: "alice@example.com", Active: true}, "")
	wantErr(t, "CreateUser with a taken email", err, latch.ErrConflict)
	if err == nil || !strings.Contains(err.Error(), "email address") {
		t.Errorf("taken email: %v, want a message naming the email address", err)
	}

	n, err = s.CountUsers(ctx)
	must(t, err)
	if n != 2 {
		t.Errorf("CountUsers = %d, want 2", n)
	}
	svc2 := &latch.User{Name: "svc2", Type: latch.UserService, Active: true}
	must(t, s.CreateUser(ctx, svc2, ""))
	must(t, s.DeleteUser(ctx, svc2.ID))

	must(t, s.DeleteUser(ctx, u.ID))
	_, err = s.UserByID(ctx, u.ID)
	wantErr(t, "UserByID after delete", err, latch.ErrNotFound)
	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, u.ID), latch.ErrNotFound)
	n, err = s.CountUsers(ctx)
	must(t, err)
	if n != 1 {
		t.Errorf("CountUsers after delete = %d, want 1", n)
	}
	// The name is free again, and ids are not reused.
	again := newUser(t, s, "Alice.Smith")
	if again.ID == u.ID {
		t.Errorf("a new user reused the deleted user's id %d", u.ID)
	}
}

func testUserLookups(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	bob := &latch.User{Name: "Bob", Email: "Bob.Builder@Example.com", Active: true}
	must(t, s.CreateUser(ctx, bob, ""))
	// A user whose email is another user's name.
	eve := &latch.User{Name: "eve", Email: "alice", Active: true}
	must(t, s.CreateUser(ctx, eve, ""))

	u, err := s.UserByName(ctx, "Bob")
	must(t, err)
	if u.ID != bob.ID {
		t.Errorf("UserByName(Bob) = %d, want %d", u.ID, bob.ID)
	}
	_, err = s.UserByName(ctx, "nobody")
	wantException(t, "UserByName(nobody)", err, latch.ErrNotFound, latch.ExNoSuchUser)
	_, err = s.UserByID(ctx, 987654)
	wantErr(t, "UserByID(missing)", err, latch.ErrNotFound)

	for _, slug := range []string{"bob", "BOB"} {
		u, err := s.UserBySlug(ctx, slug)
		must(t, err)
		if u.ID != bob.ID {
			t.Errorf("UserBySlug(%q) = %d, want %d", slug, u.ID, bob.ID)
		}
	}
	_, err = s.UserBySlug(ctx, "nobody")
	wantErr(t, "UserBySlug(nobody)", err, latch.ErrNotFound)

	for _, tc := range []struct {
		login string
		want  int64
	}{
		{"Bob", bob.ID},
		{"bob.builder@example.com", bob.ID},
		{"BOB.BUILDER@EXAMPLE.COM", bob.ID},
		{"alice@example.com", alice.ID},
		{"alice", alice.ID}, // the name wins over eve's email
		{"eve", eve.ID},
	} {
		u, err := s.UserByNameOrEmail(ctx, tc.login)
		if err != nil {
			t.Errorf("UserByNameOrEmail(%q): %v", tc.login, err)
			continue
		}
		if u.ID != tc.want {
			t.Errorf("UserByNameOrEmail(%q) = %s, want id %d", tc.login, u.Name, tc.want)
		}
	}
	for _, login := range []string{"nobody", "", "nobody@example.com"} {
		_, err := s.UserByNameOrEmail(ctx, login)
		wantErr(t, label("UserByNameOrEmail(%q)", login), err, latch.ErrNotFound)
	}
}

func testUpdateUser(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	newUser(t, s, "bob")

	alice.Name = "alicia"
	alice.Slug = ""
	alice.DisplayName = "Alicia A."
	alice.Email = "Alicia@Example.org"
	alice.Active = false
	must(t, s.UpdateUser(ctx, alice))
	if alice.Slug != "alicia" {
		t.Errorf("slug after rename = %q, want alicia", alice.Slug)
	}
	u, err := s.UserByName(ctx, "alicia")
	must(t, err)
	if u.ID != alice.ID || u.DisplayName != "Alicia A." || u.Email != "Alicia@Example.org" || u.Active || u.Slug != "alicia" {
		t.Errorf("after update read %+v", *u)
	}
	if _, err := s.UserByName(ctx, "alice"); err == nil {
		t.Error("old name still found")
	}
	u, err = s.UserByNameOrEmail(ctx, "alicia@example.org")
	must(t, err)
	if u.ID != alice.ID {
		t.Errorf("lookup by the new email found %d", u.ID)
	}

	// Updating without changes is fine.
	must(t, s.UpdateUser(ctx, alice))

	taken := *alice
	taken.Name, taken.Slug = "bob", ""
	wantErr(t, "rename onto bob", s.UpdateUser(ctx, &taken), latch.ErrConflict)
	taken.Name, taken.Slug = "BOB", ""
	wantErr(t, "rename onto BOB (same slug)", s.UpdateUser(ctx, &taken), latch.ErrConflict)
	bob, err := s.UserByName(ctx, "bob")
	must(t, err)
	taken = *alice
	taken.Email = strings.ToUpper(bob.Email)
	wantErr(t, "email onto bob's", s.UpdateUser(ctx, &taken), latch.ErrConflict)
	u, err = s.UserByID(ctx, alice.ID)
	must(t, err)
	if u.Name != "alicia" {
		t.Errorf("a conflicting update changed the name to %q", u.Name)
	}

	missing := latch.User{ID: 424242, Name: "ghost"}
	wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, &missing), latch.ErrNotFound)
}

func testPasswords(t *testing.T, s store.Store) {
	u := newUser(t, s, "alice")
	h, err := s.PasswordHash(ctx, u.ID)
	must(t, err)
	if h != "hash-alice" {
		t.Errorf("PasswordHash = %q", h)
	}
	must(t, s.SetPasswordHash(ctx, u.ID, "new"))
	h, err = s.PasswordHash(ctx, u.ID)
	must(t, err)
	if h != "new" {
		t.Errorf("PasswordHash after set = %q", h)
	}
	must(t, s.SetPasswordHash(ctx, u.ID, ""))
	h, err = s.PasswordHash(ctx, u.ID)
	must(t, err)
	if h != "" {
		t.Errorf("PasswordHash after clearing = %q", h)
	}
	// UpdateUser does not touch the hash.
	must(t, s.SetPasswordHash(ctx, u.ID, "kept"))
	u.DisplayName = "changed"
	must(t, s.UpdateUser(ctx, u))
	h, err = s.PasswordHash(ctx, u.ID)
	must(t, err)
	if h != "kept" {
		t.Errorf("PasswordHash after UpdateUser = %q, want kept", h)
	}

	_, err = s.PasswordHash(ctx, 99999)
	wantErr(t, "PasswordHash(missing)", err, latch.ErrNotFound)
	wantErr(t, "SetPasswordHash(missing)", s.SetPasswordHash(ctx, 99999, "x"), latch.ErrNotFound)
}

func testListUsers(t *testing.T, s store.Store) {
	for _, u := range []*latch.User{
		{Name: "carol", DisplayName: "Carol Jones", Email: "cj@corp.example"},
		{Name: "Alice", DisplayName: "Alice Liddell", Email: "alice@wonder.land"},
		{Name: "bob", DisplayName: "Bob Stone", Email: "BOB@corp.example"},
		{Name: "dave_x", DisplayName: "Dave 100%", Email: "dave@other.example"},
		{Name: "daveyx", DisplayName: "Davey", Email: "davey@other.example"},
		{Name: "svc-token", DisplayName: "Token user", Type: latch.UserService},
	} {
		u.Active = true
		must(t, s.CreateUser(ctx, u, ""))
	}

	us, err := s.ListUsers(ctx, store.UserFilter{}, all)
	must(t, err)
	wantList(t, "ListUsers (ordered by name, case-insensitively; no service users)", userNames(us),
		"Alice", "bob", "carol", "dave_x", "daveyx")
	us, err = s.ListUsers(ctx, store.UserFilter{IncludeService: true}, all)
	must(t, err)
	wantList(t, "ListUsers with service users", userNames(us), "Alice", "bob", "carol", "dave_x", "daveyx", "svc-token")

	for _, tc := range []struct {
		text string
		want []string
	}{
		{"ALI", []string{"Alice"}},                 // name
		{"stone", []string{"bob"}},                 // display name
		{"CORP.example", []string{"bob", "carol"}}, // email
		{"_", []string{"dave_x"}},                  // LIKE wildcards are literal
		{"100%", []string{"dave_x"}},
		{"%", []string{"dave_x"}},
		{"nothing", nil},
	} {
		us, err := s.ListUsers(ctx, store.UserFilter{Text: tc.text}, all)
		must(t, err)
		wantList(t, label("ListUsers(text %q)", tc.text), userNames(us), tc.want...)
	}

	// Paging: at most Limit+1 rows, so that callers see whether more follow.
	us, err = s.ListUsers(ctx, store.UserFilter{}, page(0, 2))
	must(t, err)
	wantList(t, "ListUsers page(0,2)", userNames(us), "Alice", "bob", "carol")
	us, err = s.ListUsers(ctx, store.UserFilter{}, page(2, 2))
	must(t, err)
	wantList(t, "ListUsers page(2,2)", userNames(us), "carol", "dave_x", "daveyx")
	us, err = s.ListUsers(ctx, store.UserFilter{}, page(4, 2))
	must(t, err)
	wantList(t, "ListUsers page(4,2)", userNames(us), "daveyx")
	us, err = s.ListUsers(ctx, store.UserFilter{}, page(10, 2))
	must(t, err)
	wantList(t, "ListUsers page(10,2)", userNames(us))
	us, err = s.ListUsers(ctx, store.UserFilter{}, page(3, 0))
	must(t, err)
	wantList(t, "ListUsers page(3,0): no limit", userNames(us), "dave_x", "daveyx")
}
