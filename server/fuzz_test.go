package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/latchrest"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/token"
)

// bodyEndpoints are the REST endpoints that read a request body.
var bodyEndpoints = []struct{ method, path string }{
	{"POST", "/rest/api/1.0/projects"},
	{"PUT", "/rest/api/1.0/projects/FZ"},
	{"POST", "/rest/api/1.0/projects/FZ/repos"},
	{"PUT", "/rest/api/1.0/projects/FZ/repos/r"},
	{"POST", "/rest/api/1.0/admin/groups/add-users"},
	{"POST", "/rest/api/1.0/admin/groups/remove-user"},
	{"PUT", "/rest/api/1.0/admin/users/credentials"},
	{"PUT", "/rest/access-tokens/1.0/users/admin"},
	{"PUT", "/rest/access-tokens/1.0/projects/FZ"},
	{"PUT", "/rest/access-tokens/1.0/projects/FZ/repos/r"},
	{"PUT", "/rest/latch/1.0/admin/settings"},
	{"POST", "/rest/latch/1.0/access-tokens/000000000000/rotate"},
	{"PUT", "/rest/latch/1.0/admin/users/admin/active"},
}

// FuzzRequestBodies sends arbitrary bodies to every REST endpoint that reads
// one, as a system administrator: whatever the body, the answer is never a
// 5xx.
func FuzzRequestBodies(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	repos, err := gitrepo.NewManager(filepath.Join(dir, "repositories"), nil)
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := backend.New(st, repos, log)
	b.SetHasher(token.NewHasher([]byte("fuzz-secret-fuzz-secret-fuzz-sec")))
	policy := settings.NewService(st, nil)
	b.SetPolicy(policy)
	if _, err := b.Bootstrap(ctx, "admin", "pw", "admin@localhost"); err != nil {
		f.Fatal(err)
	}
	admin, err := st.UserByName(ctx, "admin")
	if err != nil {
		f.Fatal(err)
	}
	p := &latch.Principal{User: admin, Credential: latch.CredPassword}
	name := "Fuzz"
	key := "FZ"
	if _, err := b.CreateProject(ctx, p, backend.ProjectInput{Key: &key, Name: &name}); err != nil {
		f.Fatal(err)
	}
	repo := "r"
	if _, err := b.CreateRepo(ctx, p, "FZ", backend.RepoInput{Name: &repo}); err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	links := dcrest.Links{BaseURL: "http://latch.test"}
	dcrest.New(b, links, log).Register(mux)
	latchrest.New(b, policy, links, log).Register(mux)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(httpx.WithPrincipal(r.Context(), p)))
	})

	for _, seed := range []string{
		`{"key":"AB","name":"n"}`, `{"name":"x","permissions":["REPO_READ"],"expiryDays":3}`,
		`{"group":"g","users":["admin"]}`, `{"tokens":{"maxPerUser":5}}`, `{"network":{"allowedCidrs":["10.0.0.0/8"]}}`,
		`{"name":5}`, `[]`, `null`, `{"graceSeconds":-1}`, `{"active":true}`, "\xff\xfe", `{"a":`,
	} {
		for i := range bodyEndpoints {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e := bodyEndpoints[int(which)%len(bodyEndpoints)]
		req := httptest.NewRequest(e.method, e.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", e.method, e.path, body, rec.Code, rec.Body.String())
		}
	})
}
