package storetest

import (
	"fmt"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

func newKey(t *testing.T, s store.Store, userID int64, n int, lbl string) *store.SSHKey {
	t.Helper()
	k := &store.SSHKey{
		UserID: userID, Text: fmt.Sprintf("ssh-ed25519 AAAAkey%d comment%d", n, n), Label: lbl,
		Fingerprint: fmt.Sprintf("SHA256:fp%d", n), Algorithm: "ED25519", Bits: 256, CreatedAt: int64(1000 + n), CreatedBy: userID,
		ExpiresAt: int64(9000 + n),
	}
	must(t, s.CreateKey(ctx, k))
	if k.ID == 0 {
		t.Fatal("CreateKey left ID 0")
	}
	return k
}

func keyLabels(ks []store.SSHKey) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.Label)
	}
	return out
}

func accessKeyLabels(ks []store.AccessKey) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.Key.Label+":"+string(k.Grant.Permission))
	}
	return out
}

func testSSHKeys(t *testing.T, s store.Store) {
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	k1 := newKey(t, s, alice.ID, 1, "Laptop")
	newKey(t, s, alice.ID, 2, "desktop")
	newKey(t, s, bob.ID, 3, "bob's")

	got, err := s.KeyByID(ctx, k1.ID)
	must(t, err)
	if *got != *k1 {
		t.Errorf("KeyByID = %+v, want %+v", got, k1)
	}
	got, err = s.KeyByFingerprint(ctx, "SHA256:fp1")
	must(t, err)
	if got.ID != k1.ID || got.UserID != alice.ID || got.IsAccessKey() {
		t.Errorf("KeyByFingerprint = %+v", got)
	}
	_, err = s.KeyByFingerprint(ctx, "SHA256:nope")
	wantErr(t, "KeyByFingerprint(unknown)", err, latch.ErrNotFound)
	_, err = s.KeyByID(ctx, 999999)
	wantErr(t, "KeyByID(unknown)", err, latch.ErrNotFound)

	// The fingerprint is unique across users and kinds.
	dup := &store.SSHKey{UserID: bob.ID, Text: "x", Fingerprint: "SHA256:fp1", Algorithm: "ED25519", Bits: 256}
	wantErr(t, "CreateKey(same fingerprint, other user)", s.CreateKey(ctx, dup), latch.ErrConflict)
	dup.UserID = 0
	wantErr(t, "CreateKey(same fingerprint, access key)", s.CreateKey(ctx, dup), latch.ErrConflict)

	ks, err := s.ListUserKeys(ctx, alice.ID, "", all)
	must(t, err)
	wantList(t, "alice's keys", keyLabels(ks), "Laptop", "desktop")
	ks, err = s.ListUserKeys(ctx, alice.ID, "lap", all)
	must(t, err)
	wantList(t, "alice's keys with label lap*", keyLabels(ks), "Laptop")
	ks, err = s.ListUserKeys(ctx, alice.ID, "%", all)
	must(t, err)
	wantList(t, "label filter is literal", keyLabels(ks))
	ks, err = s.ListUserKeys(ctx, alice.ID, "", page(1, 1))
	must(t, err)
	wantList(t, "page 2 of 1", keyLabels(ks), "desktop")
	ks, err = s.ListUserKeys(ctx, alice.ID, "", page(0, 1))
	must(t, err)
	wantList(t, "page 1 of 1 (limit+1 rows)", keyLabels(ks), "Laptop", "desktop")

	must(t, s.UpdateKeyLabel(ctx, k1.ID, "work laptop"))
	got, _ = s.KeyByID(ctx, k1.ID)
	if got.Label != "work laptop" || got.Text != k1.Text {
		t.Errorf("after UpdateKeyLabel: %+v", got)
	}
	wantErr(t, "UpdateKeyLabel(unknown)", s.UpdateKeyLabel(ctx, 999999, "x"), latch.ErrNotFound)

	must(t, s.RecordKeyUse(ctx, []store.KeyUse{{ID: k1.ID, At: 5000}}))
	must(t, s.RecordKeyUse(ctx, []store.KeyUse{{ID: k1.ID, At: 4000}, {ID: 999999, At: 1}}))
	got, _ = s.KeyByID(ctx, k1.ID)
	if got.LastAuthenticated != 5000 {
		t.Errorf("LastAuthenticated = %d, want 5000 (never moved back)", got.LastAuthenticated)
	}

	must(t, s.DeleteKey(ctx, k1.ID))
	wantErr(t, "DeleteKey twice", s.DeleteKey(ctx, k1.ID), latch.ErrNotFound)
	n, err := s.DeleteUserKeys(ctx, alice.ID)
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteUserKeys = %d, want 1", n)
	}
	ks, _ = s.ListUserKeys(ctx, alice.ID, "", all)
	wantList(t, "alice's keys after deleting all", keyLabels(ks))

	// Deleting a user deletes their keys.
	must(t, s.DeleteUser(ctx, bob.ID))
	_, err = s.KeyByFingerprint(ctx, "SHA256:fp3")
	wantErr(t, "bob's key after deleting bob", err, latch.ErrNotFound)
}

func testAccessKeys(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	prj, other := newProject(t, s, "PRJ", false), newProject(t, s, "OTH", false)
	r1, r2 := newRepo(t, s, prj, "one", false), newRepo(t, s, prj, "two", false)
	r3 := newRepo(t, s, other, "three", false)
	ci := newKey(t, s, 0, 1, "ci")
	deploy := newKey(t, s, 0, 2, "deploy")
	user := newKey(t, s, alice.ID, 3, "alice")

	set := func(k *store.SSHKey, r latch.Resource, p latch.Permission) bool {
		t.Helper()
		created, err := s.SetAccessKeyGrant(ctx, store.AccessKeyGrant{KeyID: k.ID, ProjectID: r.ProjectID, RepoID: r.RepoID, Permission: p})
		must(t, err)
		return created
	}
	if !set(ci, repoRes(r1), latch.RepoRead) || !set(ci, repoRes(r3), latch.RepoWrite) || !set(ci, projectRes(prj), latch.ProjectRead) {
		t.Error("first grants not reported as created")
	}
	if set(ci, repoRes(r1), latch.RepoWrite) {
		t.Error("re-granting reported as created")
	}
	set(deploy, repoRes(r1), latch.RepoRead)

	_, err := s.SetAccessKeyGrant(ctx, store.AccessKeyGrant{KeyID: user.ID, ProjectID: r1.ProjectID, RepoID: r1.ID, Permission: latch.RepoRead})
	wantErr(t, "granting a user key", err, latch.ErrConflict)
	_, err = s.SetAccessKeyGrant(ctx, store.AccessKeyGrant{KeyID: ci.ID, ProjectID: r1.ProjectID, RepoID: r1.ID, Permission: latch.RepoAdmin})
	wantErr(t, "REPO_ADMIN on an access key", err, latch.ErrInvalid)
	_, err = s.SetAccessKeyGrant(ctx, store.AccessKeyGrant{KeyID: ci.ID, ProjectID: prj.ID, Permission: latch.RepoRead})
	wantErr(t, "a repository permission on a project", err, latch.ErrInvalid)
	_, err = s.SetAccessKeyGrant(ctx, store.AccessKeyGrant{KeyID: 999999, ProjectID: prj.ID, Permission: latch.ProjectRead})
	wantErr(t, "granting an unknown key", err, latch.ErrNotFound)

	gs, err := s.AccessKeyGrants(ctx, ci.ID)
	must(t, err)
	want := []store.AccessKeyGrant{
		{KeyID: ci.ID, ProjectID: prj.ID, Permission: latch.ProjectRead},
		{KeyID: ci.ID, ProjectID: prj.ID, RepoID: r1.ID, Permission: latch.RepoWrite},
		{KeyID: ci.ID, ProjectID: other.ID, RepoID: r3.ID, Permission: latch.RepoWrite},
	}
	if fmt.Sprint(gs) != fmt.Sprint(want) {
		t.Errorf("AccessKeyGrants = %+v, want %+v", gs, want)
	}

	aks, err := s.ListAccessKeys(ctx, repoRes(r1), "", all)
	must(t, err)
	wantList(t, "keys on PRJ/one", accessKeyLabels(aks), "ci:REPO_WRITE", "deploy:REPO_READ")
	if len(aks) > 0 && (aks[0].Grant.RepoID != r1.ID || aks[0].Grant.ProjectID != prj.ID || aks[0].Key.Fingerprint != ci.Fingerprint) {
		t.Errorf("access key listing row = %+v", aks[0])
	}
	aks, _ = s.ListAccessKeys(ctx, repoRes(r1), "DEP", all)
	wantList(t, "keys on PRJ/one labelled dep*", accessKeyLabels(aks), "deploy:REPO_READ")
	aks, _ = s.ListAccessKeys(ctx, projectRes(prj), "", all)
	wantList(t, "keys on PRJ", accessKeyLabels(aks), "ci:PROJECT_READ")
	aks, _ = s.ListAccessKeys(ctx, repoRes(r2), "", all)
	wantList(t, "keys on PRJ/two (project keys are not listed)", accessKeyLabels(aks))
	aks, _ = s.ListAccessKeys(ctx, repoRes(r1), "", page(0, 1))
	wantList(t, "first page of keys on PRJ/one", accessKeyLabels(aks), "ci:REPO_WRITE", "deploy:REPO_READ")

	// Removing a grant removes only that one.
	ok, err := s.RemoveAccessKeyGrant(ctx, ci.ID, repoRes(r1))
	must(t, err)
	if !ok {
		t.Error("RemoveAccessKeyGrant reported nothing removed")
	}
	ok, _ = s.RemoveAccessKeyGrant(ctx, ci.ID, repoRes(r1))
	if ok {
		t.Error("second RemoveAccessKeyGrant reported a removal")
	}
	gs, _ = s.AccessKeyGrants(ctx, ci.ID)
	if len(gs) != 2 {
		t.Errorf("grants after removing one: %+v", gs)
	}

	// Deleting a repository or a project removes the grants on it.
	must(t, s.DeleteRepo(ctx, r3.ID))
	must(t, s.DeleteRepo(ctx, r1.ID))
	must(t, s.DeleteRepo(ctx, r2.ID))
	must(t, s.DeleteProject(ctx, prj.ID))
	gs, _ = s.AccessKeyGrants(ctx, ci.ID)
	if len(gs) != 0 {
		t.Errorf("grants after deleting their resources: %+v", gs)
	}
	gs, _ = s.AccessKeyGrants(ctx, deploy.ID)
	if len(gs) != 0 {
		t.Errorf("deploy grants after deleting PRJ/one: %+v", gs)
	}
	// The keys themselves stay until deleted.
	_, err = s.KeyByID(ctx, ci.ID)
	must(t, err)

	// Deleting a key deletes its grants.
	set(deploy, projectRes(other), latch.ProjectWrite)
	must(t, s.DeleteKey(ctx, deploy.ID))
	aks, _ = s.ListAccessKeys(ctx, projectRes(other), "", all)
	wantList(t, "keys on OTH after deleting the key", accessKeyLabels(aks))
}
