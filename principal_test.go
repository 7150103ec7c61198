package latch

import "testing"

func TestDecide(t *testing.T) {
	alice := &User{ID: 1, Name: "alice", Active: true, Type: UserNormal}
	inactive := &User{ID: 2, Name: "bob", Active: false, Type: UserNormal}
	repo := Resource{ProjectID: 10, RepoID: 100}
	other := Resource{ProjectID: 10, RepoID: 101}
	proj := Resource{ProjectID: 10}
	password := func(u *User) *Principal { return &Principal{User: u, Credential: CredPassword} }
	token := func(pl, rl Level) *Principal {
		return &Principal{User: alice, Credential: CredPersonalToken, Limits: &Limits{Project: pl, Repo: rl}}
	}
	repoToken := &Principal{Credential: CredRepoToken, Grants: []Grant{{Resource: repo, Level: LevelWrite}}}
	projectKey := &Principal{Credential: CredAccessKey, Grants: []Grant{{Resource: proj, Level: LevelRead}}}

	for _, tc := range []struct {
		name    string
		p       *Principal
		a       Action
		r       Resource
		held    Access
		allowed bool
		visible bool
	}{
		{"reader clones", password(alice), ReadRepo, repo, Access{Repo: LevelRead}, true, true},
		{"reader cannot push", password(alice), WriteRepo, repo, Access{Repo: LevelRead}, false, true},
		{"writer pushes", password(alice), WriteRepo, repo, Access{Repo: LevelWrite}, true, true},
		{"no access is invisible", password(alice), ReadRepo, repo, Access{}, false, false},
		{"inactive user has nothing", password(inactive), ReadRepo, repo, Access{Repo: LevelAdmin}, false, false},
		{"anonymous reads public", Anonymous, ReadRepo, repo, Access{Repo: LevelRead}, true, true},
		{"anonymous never writes", Anonymous, WriteRepo, repo, Access{Repo: LevelAdmin}, false, true},
		{"repo action needs a repo", password(alice), ReadRepo, proj, Access{Repo: LevelAdmin, Project: LevelAdmin}, false, true},
		{"project admin", password(alice), AdminProject, proj, Access{Project: LevelAdmin}, true, true},
		{"project writer is not admin", password(alice), AdminProject, proj, Access{Project: LevelWrite}, false, true},
		{"project create", password(alice), CreateProject, Resource{}, Access{Global: LevelWrite}, true, true},
		{"licensed user cannot create", password(alice), CreateProject, Resource{}, Access{Global: LevelRead}, false, true},
		{"token capped below owner", token(LevelRead, LevelRead), WriteRepo, repo, Access{Repo: LevelAdmin}, false, true},
		{"token never above owner", token(LevelAdmin, LevelAdmin), WriteRepo, repo, Access{Repo: LevelRead}, false, true},
		{"token within both", token(LevelRead, LevelWrite), WriteRepo, repo, Access{Repo: LevelAdmin}, true, true},
		{"token has no global admin", token(LevelAdmin, LevelAdmin), AdminInstance, Resource{}, Access{Global: LevelSysAdmin}, false, true},
		{"token cannot manage credentials", token(LevelAdmin, LevelAdmin), ManageCredentials, Resource{}, Access{Global: LevelSysAdmin}, false, true},
		{"password manages credentials", password(alice), ManageCredentials, Resource{}, Access{}, true, true},
		{"anonymous cannot manage credentials", Anonymous, ManageCredentials, Resource{}, Access{}, false, true},
		{"repo token on its repo", repoToken, WriteRepo, repo, Access{}, true, true},
		{"repo token elsewhere", repoToken, ReadRepo, other, Access{Repo: LevelAdmin}, false, false},
		{"repo token not admin", repoToken, AdminRepo, repo, Access{}, false, true},
		{"project key reads every repo", projectKey, ReadRepo, other, Access{}, true, true},
		{"project key cannot push", projectKey, WriteRepo, other, Access{}, false, true},
		{"project key outside project", projectKey, ReadRepo, Resource{ProjectID: 11, RepoID: 200}, Access{}, false, false},
		{"authenticated", password(alice), Authenticated, Resource{}, Access{}, true, true},
		{"anonymous is not authenticated", Anonymous, Authenticated, Resource{}, Access{}, false, true},
		{"unknown action denied", password(alice), Action(999), repo, Access{Repo: LevelAdmin}, false, false},
	} {
		d := Decide(tc.p, tc.a, tc.r, tc.held)
		if d.Allowed != tc.allowed || (tc.a != Action(999) && d.Visible != tc.visible) {
			t.Errorf("%s: got allowed=%v visible=%v, want %v %v", tc.name, d.Allowed, d.Visible, tc.allowed, tc.visible)
		}
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Demo Repo": "demo-repo", "  My  Repo!! ": "my-repo", "a.b_c-d": "a.b_c-d", "Über Café": "ber-caf", "---": "",
	} {
		if got := Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateProjectKey(t *testing.T) {
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'A'
	}
	for _, k := range []string{"", "1ABC", "A-B", "A B", "_A", string(long)} {
		if ValidateProjectKey(k) == nil {
			t.Errorf("accepted %q", k)
		}
	}
	for _, k := range []string{"A", "PRJ", "a_1", string(long[:128])} {
		if err := ValidateProjectKey(k); err != nil {
			t.Errorf("refused %q: %v", k, err)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	p := &Principal{User: &User{ID: 1, Active: true}, Credential: CredPersonalToken, Limits: &Limits{Project: LevelRead, Repo: LevelWrite}}
	r := Resource{ProjectID: 1, RepoID: 2}
	held := Access{Global: LevelRead, Project: LevelRead, Repo: LevelAdmin}
	for b.Loop() {
		if !Decide(p, WriteRepo, r, held).Allowed {
			b.Fatal("denied")
		}
	}
}
