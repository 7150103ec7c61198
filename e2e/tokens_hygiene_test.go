package e2e

// Secret hygiene: a token secret is shown once, in the creation response,
// and never stored, logged or echoed. The test plants tokens, exercises
// every path that sees them (REST with Basic and Bearer, git clone and push,
// failed uses, list/get/update/delete, a restart), then searches the server
// logs and every file under the data directory for them.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // reads latch.db after the server stopped
)

func TestAccessTokenSecretHygiene(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH(), WithSQLite(), WithEnv("LATCH_LOG_LEVEL=debug"))
	s.createProject(t, "HYG", "Hygiene")
	s.createRepo(t, "HYG", "Code")
	u := s.createUser(t, "hyg")
	s.grant(t, "HYG", u.Name, "PROJECT_ADMIN")
	g := newGit(t)
	work := s.seedRepo(t, g, "HYG", "code")

	personal := s.createTokenAs(t, userTokens("hyg"), u.Name, u.Password,
		map[string]any{"name": "personal", "permissions": []string{"PROJECT_WRITE", "REPO_WRITE"}, "expiryDays": 7})
	revoked := s.createTokenAs(t, userTokens("hyg"), u.Name, u.Password, tokReq("revoked", "PROJECT_READ", "REPO_READ"))
	project := s.createTokenAs(t, projectTokens("HYG"), u.Name, u.Password, tokReq("project", "PROJECT_READ", "REPO_WRITE"))
	repo := s.createTokenAs(t, repoTokens("HYG", "code"), u.Name, u.Password, tokReq("repo", "REPO_WRITE"))
	kept := s.createTokenAs(t, userTokens("hyg"), u.Name, u.Password, tokReq("kept", "PROJECT_READ", "REPO_READ"))
	planted := []restToken{personal, revoked, project, repo, kept}

	exercise := func(t *testing.T, s *Server, phase string) {
		path := "/rest/api/1.0/projects/HYG/repos/code"
		// Successful REST uses.
		for _, h := range []http.Header{basicHdr(u.Name, personal.Token), basicHdr(u.Email, personal.Token), bearerHdr(personal.Token), bearerHdr(project.Token), bearerHdr(repo.Token), basicHdr(u.Name, kept.Token)} {
			st, b, _ := s.request(t, http.MethodGet, path, h, nil)
			expectStatus(t, phase+": REST use", st, b, http.StatusOK)
		}
		// Failed uses: wrong user, Basic with a project token, wrong
		// checksum, wrong kind of request (token on token), unknown path.
		for _, c := range []struct {
			h    http.Header
			path string
		}{
			{basicHdr("someone-else", personal.Token), path},
			{basicHdr(project.User.Name, project.Token), path},
			{basicHdr("x-token-auth", repo.Token), path},
			{bearerHdr(mutateChecksum(personal.Token)), path},
			{bearerHdr(personal.Token), "/rest/api/1.0/projects/NOPE/repos/none"},
			{bearerHdr(repo.Token), "/rest/api/1.0/projects/HYG/repos/none"},
		} {
			st, b, _ := s.request(t, http.MethodGet, c.path, c.h, nil)
			if st < 400 || st >= 500 {
				t.Errorf("%s: failed use answered %d: %s", phase, st, truncate(b, 200))
			}
			noSecretIn(t, phase+": failed use", b, secretsOf(planted)...)
		}
		st, b, _ := s.doBearer(t, http.MethodPut, userTokens("hyg"), personal.Token, tokReq("child", "REPO_READ"))
		expectStatus(t, phase+": token on token", st, b, http.StatusUnauthorized)
		noSecretIn(t, phase+": token on token", b, secretsOf(planted)...)
		// Git: clone and push with each kind and each way of presenting it.
		for i, a := range []gitAuth{basicGit(u.Name, personal.Token), basicGit(u.Email, personal.Token), bearerGit(personal.Token), bearerGit(project.Token), bearerGit(repo.Token)} {
			s.expectClone(t, g, a, "HYG", "code", true)
			s.expectPush(t, g, a, work, "HYG", "code", phase+"-"+string(rune('a'+i)), true)
		}
		// Failed git uses.
		s.expectClone(t, g, basicGit("someone-else", personal.Token), "HYG", "code", false)
		s.expectClone(t, g, basicGit("x-token-auth", project.Token), "HYG", "code", false)
		s.expectClone(t, g, bearerGit(mutateChecksum(repo.Token)), "HYG", "code", false)
		s.expectClone(t, g, bearerGit(personal.Token), "HYG", "missing", false)
		// Management: list, get, update.
		for _, coll := range []string{userTokens("hyg"), projectTokens("HYG"), repoTokens("HYG", "code")} {
			_, raw := s.tokenList(t, coll, u.Name, u.Password)
			noSecretIn(t, phase+": list "+coll, raw, secretsOf(planted)...)
		}
		for _, c := range []struct{ coll, id string }{{userTokens("hyg"), personal.ID}, {projectTokens("HYG"), project.ID}, {repoTokens("HYG", "code"), repo.ID}} {
			st, b, _ := s.do(t, http.MethodGet, c.coll+"/"+c.id, u.Name, u.Password, nil)
			expectStatus(t, phase+": get", st, b, http.StatusOK)
			noSecretIn(t, phase+": get", b, secretsOf(planted)...)
			st, b, _ = s.do(t, http.MethodPost, c.coll+"/"+c.id, u.Name, u.Password, map[string]any{"name": "renamed " + phase})
			expectStatus(t, phase+": update", st, b, http.StatusOK)
			noSecretIn(t, phase+": update", b, secretsOf(planted)...)
			st, b, _ = s.do(t, http.MethodPost, c.coll+"/"+c.id, u.Name, u.Password, map[string]any{"expiryDays": 1})
			expectStatus(t, phase+": refused update", st, b, http.StatusBadRequest)
			noSecretIn(t, phase+": refused update", b, secretsOf(planted)...)
		}
	}

	t.Run("before restart", func(t *testing.T) {
		exercise(t, s, "one")
		// Rotation (latch's own API) shows a second secret once; both are
		// planted.
		st, b, _ := s.do(t, http.MethodPost, "/rest/latch/1.0/access-tokens/"+revoked.ID+"/rotate", u.Name, u.Password, map[string]any{"graceSeconds": 60})
		var rotated restToken
		if st == http.StatusOK {
			rotated = decodeJSON[restToken](t, b)
			s.addSecret(rotated.Token)
			rotated.Name = "revoked (rotated)"
			planted = append(planted, rotated)
			for _, sec := range []string{rotated.Token, revoked.Token} {
				st, b, _ := s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/HYG", sec, nil)
				expectStatus(t, "rotated token and its predecessor in grace", st, b, http.StatusOK)
			}
		} else {
			t.Logf("rotation not available (%d): skipped", st)
		}
		st, b, _ = s.do(t, http.MethodDelete, userTokens("hyg")+"/"+revoked.ID, u.Name, u.Password, nil)
		mustStatus(t, "delete", st, b, http.StatusNoContent)
		for _, sec := range []string{revoked.Token, rotated.Token} {
			if sec == "" {
				continue
			}
			st, b, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/HYG", sec, nil)
			expectStatus(t, "revoked token", st, b, http.StatusUnauthorized)
			s.expectClone(t, g, basicGit(u.Name, sec), "HYG", "code", false)
		}
	})

	// The database files while the server runs (the WAL holds recent writes).
	scanDataDir(t, s.DataDir, "running server", planted)

	before := getJSON[restToken](t, s, userTokens("hyg")+"/"+personal.ID, u.Name, u.Password)
	firstLog := s.LogPath
	s2 := s.restart(t, WithEnv("LATCH_LOG_LEVEL=debug"))

	t.Run("after restart", func(t *testing.T) {
		// Last use was flushed at shutdown.
		after := getJSON[restToken](t, s2, userTokens("hyg")+"/"+personal.ID, u.Name, u.Password)
		if before.LastAuthenticated == nil || after.LastAuthenticated == nil || *after.LastAuthenticated != *before.LastAuthenticated {
			t.Errorf("lastAuthenticated before restart %v, after %v: pending uses must be flushed on shutdown", before.LastAuthenticated, after.LastAuthenticated)
		}
		exercise(t, s2, "two")
		st, b, _ := s2.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/HYG", revoked.Token, nil)
		expectStatus(t, "revoked token after restart", st, b, http.StatusUnauthorized)
		for _, c := range []struct{ coll, id string }{{userTokens("hyg"), personal.ID}, {projectTokens("HYG"), project.ID}, {repoTokens("HYG", "code"), repo.ID}} {
			st, b, _ := s2.do(t, http.MethodDelete, c.coll+"/"+c.id, u.Name, u.Password, nil)
			expectStatus(t, "delete", st, b, http.StatusNoContent)
		}
		for _, tk := range planted {
			if tk.ID == kept.ID {
				continue
			}
			st, _, _ := s2.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/HYG/repos/code", tk.Token, nil)
			if st != http.StatusUnauthorized {
				t.Errorf("%s after delete: %d", tk.Name, st)
			}
		}
	})
	s2.stop(t)

	for _, logPath := range []string{firstLog, s2.LogPath} {
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Errorf("server log %s is empty: nothing was checked", logPath)
		}
		for _, tk := range planted {
			for _, form := range secretForms(tk, u) {
				if bytes.Contains(b, []byte(form)) {
					t.Errorf("server log %s contains token %s (%s)", logPath, tk.Name, redact(form))
				}
			}
		}
	}
	scanDataDir(t, s.DataDir, "stopped server", planted)
	rows, key := tokenRows(t, s.DataDir, planted)
	checkDigest(t, rows, key, kept)
	for _, tk := range planted {
		if _, ok := rows[tk.ID]; ok && tk.ID != kept.ID {
			t.Errorf("deleted token %s is still stored", tk.Name)
		}
	}
}

func secretsOf(ts []restToken) []string {
	var out []string
	for _, tk := range ts {
		out = append(out, tk.Token)
	}
	return out
}

// secretForms are the ways a secret could leak: as is, its random part, and
// base64 of the Basic credentials that carried it.
func secretForms(tk restToken, u testUser) []string {
	return []string{
		tk.Token,
		tk.Token[5:37],
		base64.StdEncoding.EncodeToString([]byte(u.Name + ":" + tk.Token)),
		base64.StdEncoding.EncodeToString([]byte(u.Email + ":" + tk.Token)),
		base64.StdEncoding.EncodeToString([]byte(tk.Token)),
	}
}

// scanDataDir reads every regular file under dir (the SQLite database and
// its WAL, repositories, keys) and fails on any planted secret.
func scanDataDir(t *testing.T, dir, phase string, planted []restToken) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, tk := range planted {
			for _, form := range []string{tk.Token, tk.Token[5:37]} {
				if bytes.Contains(b, []byte(form)) {
					t.Errorf("%s: %s contains token %s", phase, p, tk.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "latch.db")); err != nil {
		t.Errorf("%s: no latch.db in the data directory: %v", phase, err)
	}
	t.Logf("%s: scanned %d files under %s", phase, n, dir)
}

// tokenRows copies the stopped server's database, reads every row of
// access_tokens (by id, column → value) and fails when any column holds a
// planted secret; it also returns the server secret.
func tokenRows(t *testing.T, dataDir string, planted []restToken) (map[string]map[string]any, []byte) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		t.Fatalf("server secret: %v", err)
	}
	// A copy, so that opening the database does not touch the server's files.
	tmp := t.TempDir()
	for _, name := range []string{"latch.db", "latch.db-wal", "latch.db-shm"} {
		if b, err := os.ReadFile(filepath.Join(dataDir, name)); err == nil {
			if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT * FROM access_tokens")
	if err != nil {
		t.Fatalf("reading access_tokens: %v", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	byID := map[string]map[string]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, c := range cols {
			row[c] = vals[i]
			var raw []byte
			switch v := vals[i].(type) {
			case string:
				raw = []byte(v)
			case []byte:
				raw = v
			}
			for _, tk := range planted {
				if bytes.Contains(raw, []byte(tk.Token)) || bytes.Contains(raw, []byte(tk.Token[5:37])) {
					t.Errorf("column %s of access_tokens holds token %s", c, tk.Name)
				}
			}
		}
		id, _ := row["id"].(string)
		byID[id] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return byID, key
}

// checkDigest checks that tk is stored under HMAC-SHA256(server secret, token).
func checkDigest(t *testing.T, rows map[string]map[string]any, key []byte, tk restToken) {
	t.Helper()
	row, ok := rows[tk.ID]
	if !ok {
		t.Errorf("token %s (%s) not in access_tokens (ids %v)", tk.ID, tk.Name, keysOf(rows))
		return
	}
	d, _ := row["digest"].([]byte)
	if s, ok := row["digest"].(string); ok {
		d = []byte(s)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tk.Token))
	want := m.Sum(nil)
	plain := sha256.Sum256([]byte(tk.Token))
	switch {
	case bytes.Equal(d, want):
	case strings.EqualFold(string(d), hex.EncodeToString(want)):
	case bytes.Equal(d, plain[:]):
		t.Errorf("%s: digest is the plain SHA-256 of the token, not keyed with the server secret", tk.Name)
	default:
		t.Errorf("%s: digest %x is not HMAC-SHA256(secret.key, token) %x", tk.Name, d, want)
	}
}

// TestAccessTokenStoredAsDigest checks the stored form of live tokens of each
// kind: the digest column is HMAC-SHA256(server secret, token), not the token
// nor its plain SHA-256, and no column holds the secret.
func TestAccessTokenStoredAsDigest(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH(), WithSQLite())
	s.createProject(t, "DIG", "Digest")
	s.createRepo(t, "DIG", "Code")
	u := s.createUser(t, "dig")
	s.grant(t, "DIG", u.Name, "PROJECT_ADMIN")
	toks := []restToken{
		s.createTokenAs(t, userTokens("dig"), u.Name, u.Password, tokReq("p", "PROJECT_READ", "REPO_READ")),
		s.createTokenAs(t, projectTokens("DIG"), u.Name, u.Password, tokReq("pr", "PROJECT_READ", "REPO_READ")),
		s.createTokenAs(t, repoTokens("DIG", "code"), u.Name, u.Password, tokReq("r", "REPO_READ")),
	}
	for _, tk := range toks {
		st, b, _ := s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/DIG/repos/code", tk.Token, nil)
		expectStatus(t, "use", st, b, http.StatusOK)
	}
	s.stop(t)
	scanDataDir(t, s.DataDir, "stopped server", toks)
	rows, key := tokenRows(t, s.DataDir, toks)
	for _, tk := range toks {
		checkDigest(t, rows, key, tk)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
