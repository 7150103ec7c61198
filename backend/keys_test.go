package backend

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/store"
)

func newKeyText(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + comment
}

// TestKeyAuthorization checks who may manage which keys.
func TestKeyAuthorization(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := New(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := b.Bootstrap(ctx, "root", "root-password-1", "root@example.com"); err != nil {
		t.Fatal(err)
	}
	root, _ := st.UserByName(ctx, "root")
	mk := func(name string) *latch.User {
		u := &latch.User{Name: name, Slug: name, Email: name + "@example.com", Active: true, Type: latch.UserNormal}
		if err := st.CreateUser(ctx, u, ""); err != nil {
			t.Fatal(err)
		}
		return u
	}
	alice, bob, admin := mk("alice"), mk("bob"), mk("admin")
	if err := st.SetPermission(ctx, latch.Resource{}, store.Subject{UserID: admin.ID}, latch.Admin); err != nil {
		t.Fatal(err)
	}
	prj := &latch.Project{Key: "PRJ", Name: "P"}
	if err := st.CreateProject(ctx, prj); err != nil {
		t.Fatal(err)
	}
	repo := &latch.Repository{ProjectID: prj.ID, Name: "r", Slug: "r"}
	if err := st.CreateRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPermission(ctx, latch.Resource{ProjectID: prj.ID, RepoID: repo.ID}, store.Subject{UserID: bob.ID}, latch.RepoAdmin); err != nil {
		t.Fatal(err)
	}
	pw := func(u *latch.User) *latch.Principal { return &latch.Principal{User: u, Credential: latch.CredPassword} }
	tok := func(u *latch.User) *latch.Principal {
		return &latch.Principal{User: u, Credential: latch.CredPersonalToken, Limits: &latch.Limits{Project: latch.LevelAdmin, Repo: latch.LevelAdmin}}
	}
	add := func(p *latch.Principal, user string) error {
		text := newKeyText(t, "k")
		_, err := b.AddUserKey(ctx, p, user, KeyInput{Text: &text})
		return err
	}
	denied := func(what string, err error) {
		t.Helper()
		if _, ok := IsDenied(err); !ok {
			t.Errorf("%s: %v, want denied", what, err)
		}
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	ok("alice adds her own key", add(pw(alice), ""))
	ok("alice adds her own key by name", add(pw(alice), "alice"))
	denied("alice adds a key for bob", add(pw(alice), "bob"))
	denied("a token adds a key", add(tok(alice), ""))
	denied("anonymous adds a key", add(latch.Anonymous, "alice"))
	ok("an admin adds a key for alice", add(pw(admin), "alice"))
	denied("an admin adds a key for a system admin", add(pw(admin), "root"))
	ok("a system admin adds a key for the admin", add(pw(root), "admin"))
	if _, err := b.ListUserKeys(ctx, pw(bob), "alice", "", store.Page{}); err == nil {
		t.Error("bob listed alice's keys")
	}
	page, err := b.ListUserKeys(ctx, pw(alice), "", "", store.Page{})
	ok("alice lists her keys", err)
	if len(page.Values) != 3 {
		t.Errorf("alice has %d keys, want 3", len(page.Values))
	}
	id := page.Values[0].ID
	if _, err := b.UserKey(ctx, pw(bob), id); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("bob reads alice's key: %v, want not found", err)
	}
	// Changing a key one may not read says it does not exist, as reading
	// it does: the answer tells no one which ids are keys.
	if err := b.DeleteUserKey(ctx, pw(bob), id); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("bob deletes alice's key: %v, want not found", err)
	}
	if _, err := b.UpdateUserKeyLabel(ctx, pw(bob), id, "x"); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("bob relabels alice's key: %v, want not found", err)
	}
	denied("alice's token deletes her key", b.DeleteUserKey(ctx, tok(alice), id))
	ok("alice deletes her key", b.DeleteUserKey(ctx, pw(alice), id))

	// Access keys: repository administrators, with an interactive credential.
	ref := KeyResourceRef{ProjectKey: "PRJ", RepoSlug: "r"}
	text := newKeyText(t, "ci")
	addAccess := func(p *latch.Principal, ref KeyResourceRef, perm string) (*AccessKeyView, error) {
		return b.AddAccessKey(ctx, p, ref, KeyInput{Text: &text, Permission: perm})
	}
	_, err = addAccess(pw(alice), ref, "REPO_READ")
	denied("alice adds an access key", err)
	_, err = addAccess(tok(bob), ref, "REPO_READ")
	denied("bob's token adds an access key", err)
	_, err = addAccess(pw(bob), KeyResourceRef{ProjectKey: "PRJ"}, "PROJECT_READ")
	denied("bob (repository admin) adds a project key", err)
	v, err := addAccess(pw(bob), ref, "REPO_WRITE")
	ok("bob adds an access key", err)
	if err == nil && (v.Permission != latch.RepoWrite || v.Repo.ID != repo.ID) {
		t.Errorf("access key view %+v", v)
	}
	if _, err := b.ListAccessKeys(ctx, pw(alice), ref, AccessKeyFilter{}, store.Page{}); err == nil {
		t.Error("alice listed the repository's access keys")
	}
	usages, err := b.AccessKeyRepos(ctx, pw(alice), v.Key.ID, store.Page{})
	if err != nil || len(usages.Values) != 0 {
		t.Errorf("alice sees %d usages, %v; want none", len(usages.Values), err)
	}
	usages, _ = b.AccessKeyRepos(ctx, pw(bob), v.Key.ID, store.Page{})
	if len(usages.Values) != 1 {
		t.Errorf("bob sees %d usages, want 1", len(usages.Values))
	}

	// Listing with Data Center's filters.
	ptext := newKeyText(t, "project-ci")
	if _, err := b.AddAccessKey(ctx, pw(root), KeyResourceRef{ProjectKey: "PRJ"}, KeyInput{Text: &ptext, Permission: "PROJECT_READ"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f    AccessKeyFilter
		want int
	}{
		{AccessKeyFilter{}, 1},
		{AccessKeyFilter{Effective: true}, 2},
		{AccessKeyFilter{Effective: true, MinPermission: "REPO_WRITE"}, 1},
		{AccessKeyFilter{Effective: true, Permission: "REPO_READ"}, 1},
		{AccessKeyFilter{Effective: true, Label: "project"}, 1},
	} {
		got, err := b.ListAccessKeys(ctx, pw(root), ref, tc.f, store.Page{})
		if err != nil || len(got.Values) != tc.want {
			t.Errorf("ListAccessKeys(%+v) = %d keys, %v; want %d", tc.f, len(got.Values), err, tc.want)
		}
	}
	if _, err := b.ListAccessKeys(ctx, pw(root), ref, AccessKeyFilter{Permission: "ADMIN"}, store.Page{}); !errors.Is(err, latch.ErrInvalid) {
		t.Errorf("permission ADMIN: %v, want invalid", err)
	}

	// The principal of the access key carries only its grants.
	p, _, err := b.KeyPrincipal(ctx, v.Key.ID, v.Key.Fingerprint)
	ok("KeyPrincipal", err)
	if p.User != nil || p.Credential != latch.CredAccessKey || len(p.Grants) != 1 || p.Grants[0].Level != latch.LevelWrite ||
		p.Grants[0].Resource != (latch.Resource{ProjectID: prj.ID, RepoID: repo.ID}) {
		t.Errorf("access key principal %+v", p)
	}
	if _, _, err := b.KeyPrincipal(ctx, v.Key.ID, "SHA256:other"); err == nil {
		t.Error("KeyPrincipal accepted another fingerprint")
	}
	// Removing its last grant deletes the key: it may then be a user key.
	ok("bob removes the access key", b.RemoveAccessKey(ctx, pw(bob), ref, v.Key.ID))
	if _, err := st.KeyByID(ctx, v.Key.ID); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("key without grants still stored: %v", err)
	}
	_, err = b.AddUserKey(ctx, pw(alice), "", KeyInput{Text: &text})
	ok("the former access key as alice's key", err)
	up, _, err := b.KeyPrincipal(ctx, mustKey(t, st, text).ID, mustKey(t, st, text).Fingerprint)
	ok("user key principal", err)
	if up.User == nil || up.User.ID != alice.ID || up.Credential != latch.CredUserKey || up.Grants != nil {
		t.Errorf("user key principal %+v", up)
	}
}

func mustKey(t *testing.T, st interface {
	KeyByFingerprint(context.Context, string) (*store.SSHKey, error)
}, text string) *store.SSHKey {
	t.Helper()
	k, _, err := parseKeyInput(KeyInput{Text: &text})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := st.KeyByFingerprint(context.Background(), k.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}
