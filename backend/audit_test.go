package backend_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/store"
)

// events is an audit.Recorder that keeps what it is given.
type events struct {
	mu  sync.Mutex
	all []store.AuditEvent
}

func (r *events) Record(_ context.Context, e store.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, e)
}

// take returns the events recorded since the last take, as
// "type target detail" lines.
func (r *events) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.all {
		out = append(out, strings.TrimSpace(e.Type+" "+e.Target+" "+e.Detail))
	}
	r.all = nil
	return out
}

// Whatever widens or narrows access is audited: permissions, group
// membership and visibility, each with who did it.
func TestAccessChangesAreAudited(t *testing.T) {
	ctx := context.Background()
	b, _, _, sys := newTestBackend(t, "root")
	rec := &events{}
	b.SetAudit(rec)
	if _, err := b.CreateUser(ctx, sys, backend.NewUser{Name: "bob", Password: "pw", Email: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	name, key := "Demo", "PRJ"
	if _, err := b.CreateProject(ctx, sys, backend.ProjectInput{Key: &key, Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateRepo(ctx, sys, "PRJ", backend.RepoInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	rec.take()

	yes, no := true, false
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error {
			return b.SetPermission(ctx, sys, backend.PermTarget{}, backend.Users, []string{"bob"}, "ADMIN")
		}, "permission.changed global user bob: ADMIN"},
		{func() error {
			return b.SetPermission(ctx, sys, backend.PermTarget{ProjectKey: "prj"}, backend.Users, []string{"bob"}, "PROJECT_WRITE")
		}, "permission.changed project:PRJ user bob: PROJECT_WRITE"},
		{func() error {
			return b.RevokePermission(ctx, sys, backend.PermTarget{ProjectKey: "PRJ", RepoSlug: "demo"}, backend.Users, "bob")
		}, "permission.changed repository:PRJ/demo user bob: revoked"},
		{func() error { _, err := b.CreateGroup(ctx, sys, "admins"); return err }, "group.changed group:admins created"},
		{func() error {
			return b.SetPermission(ctx, sys, backend.PermTarget{}, backend.Groups, []string{"admins"}, "SYS_ADMIN")
		}, "permission.changed global group admins: SYS_ADMIN"},
		{func() error { return b.AddUsersToGroup(ctx, sys, "admins", []string{"bob"}) }, "group.changed group:admins added bob"},
		{func() error { return b.RemoveUserFromGroup(ctx, sys, "admins", "bob") }, "group.changed group:admins removed bob"},
		{func() error { _, err := b.DeleteGroup(ctx, sys, "admins"); return err }, "group.changed group:admins deleted"},
		{func() error {
			_, err := b.UpdateProject(ctx, sys, "PRJ", backend.ProjectInput{Public: &yes})
			return err
		},
			"visibility.changed project:PRJ public true"},
		{func() error {
			_, err := b.UpdateRepo(ctx, sys, "prj", "demo", backend.RepoInput{Public: &yes})
			return err
		},
			"visibility.changed repository:PRJ/demo public true"},
		{func() error {
			_, err := b.UpdateRepo(ctx, sys, "PRJ", "demo", backend.RepoInput{Public: &no})
			return err
		},
			"visibility.changed repository:PRJ/demo public false"},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.want, err)
		}
		if got := rec.take(); len(got) != 1 || got[0] != s.want {
			t.Errorf("recorded %q, want [%q]", got, s.want)
		}
	}
	// A change that leaves visibility as it was is not a visibility event.
	if _, err := b.UpdateRepo(ctx, sys, "PRJ", "demo", backend.RepoInput{Public: &no}); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); len(got) != 0 {
		t.Errorf("an unchanged visibility recorded %q", got)
	}
}

// Names and text that the databases would store differently, or that no URL
// can name, are refused before anything is written.
func TestUnstorableTextIsRefused(t *testing.T) {
	ctx := context.Background()
	b, st, _, sys := newTestBackend(t, "root")
	name, key := "Demo", "PRJ"
	if _, err := b.CreateProject(ctx, sys, backend.ProjectInput{Key: &key, Name: &name}); err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	if _, err := b.CreateRepo(ctx, sys, "PRJ", backend.RepoInput{Name: str("demo")}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func() error{
		"repository ..": func() error { _, err := b.CreateRepo(ctx, sys, "PRJ", backend.RepoInput{Name: str("..")}); return err },
		"repository .":  func() error { _, err := b.CreateRepo(ctx, sys, "PRJ", backend.RepoInput{Name: str(".")}); return err },
		"repository renamed ..": func() error {
			_, err := b.UpdateRepo(ctx, sys, "PRJ", "demo", backend.RepoInput{Name: str("..")})
			return err
		},
		"repository bad UTF-8": func() error {
			_, err := b.CreateRepo(ctx, sys, "PRJ", backend.RepoInput{Name: str("r\xffx")})
			return err
		},
		"description NUL": func() error {
			_, err := b.CreateRepo(ctx, sys, "PRJ", backend.RepoInput{Name: str("ok"), Description: str("a\x00b")})
			return err
		},
		"project description bad UTF-8": func() error {
			_, err := b.UpdateProject(ctx, sys, "PRJ", backend.ProjectInput{Description: str("a\xffb")})
			return err
		},
		"user ..": func() error {
			_, err := b.CreateUser(ctx, sys, backend.NewUser{Name: "..", Password: "pw", Email: "d@example.com"})
			return err
		},
		"user .": func() error {
			_, err := b.CreateUser(ctx, sys, backend.NewUser{Name: ".", Password: "pw", Email: "d@example.com"})
			return err
		},
		"user bad UTF-8": func() error {
			_, err := b.CreateUser(ctx, sys, backend.NewUser{Name: "u\xffx", Password: "pw", Email: "d@example.com"})
			return err
		},
		"display name NUL": func() error {
			_, err := b.CreateUser(ctx, sys, backend.NewUser{Name: "dn", DisplayName: "D\x00x", Password: "pw", Email: "d@example.com"})
			return err
		},
		"group NUL":       func() error { _, err := b.CreateGroup(ctx, sys, "g\x00b"); return err },
		"group newline":   func() error { _, err := b.CreateGroup(ctx, sys, "g\nb"); return err },
		"group bad UTF-8": func() error { _, err := b.CreateGroup(ctx, sys, "g\xffb"); return err },
		"token name NUL": func() error {
			_, err := b.CreateToken(ctx, sys, backend.TokenOwnerRef{UserSlug: "root"}, backend.TokenInput{Name: str("a\x00b"), Permissions: &[]string{"REPO_READ"}})
			return err
		},
	}
	for what, do := range cases {
		err := do()
		if !errors.Is(err, latch.ErrInvalid) {
			t.Errorf("%s: got %v, want an invalid-input error", what, err)
		}
	}
	for _, slug := range []string{"..", ".", "ok"} {
		if _, err := st.RepoBySlug(ctx, "PRJ", slug); !errors.Is(err, latch.ErrNotFound) {
			t.Errorf("repository %q after the refusals: %v", slug, err)
		}
	}
}
