package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/latchhq/latch/store"

	_ "modernc.org/sqlite"
)

func openSQLite(t *testing.T) *Store {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db")+"?_txlock=immediate&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(db, SQLite)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNew(t *testing.T) {
	if _, err := New(nil, SQLite); err == nil {
		t.Error("New(nil) succeeded")
	}
	db, _ := sql.Open("sqlite", ":memory:")
	defer db.Close()
	if _, err := New(db, "oracle"); err == nil {
		t.Error("New with an unknown dialect succeeded")
	}
}

// TestEmbeddedMigrations checks that every dialect has the same numbered
// migrations, in order, starting at 0001_core.
func TestEmbeddedMigrations(t *testing.T) {
	lite, err := Migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := Migrations(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || lite[0].Name != "0001_core" {
		t.Fatalf("SQLite migrations start with %+v", lite)
	}
	if len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations but %d PostgreSQL ones", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Name != pg[i].Name || lite[i].Version != pg[i].Version || (i > 0 && lite[i].Version <= lite[i-1].Version) {
			t.Errorf("migration %d: SQLite %s (v%d), PostgreSQL %s (v%d)", i, lite[i].Name, lite[i].Version, pg[i].Name, pg[i].Version)
		}
		if strings.TrimSpace(lite[i].SQL) == "" || strings.TrimSpace(pg[i].SQL) == "" {
			t.Errorf("migration %s is empty", lite[i].Name)
		}
	}
	if _, err := Migrations("oracle"); err == nil {
		t.Error("Migrations of an unknown dialect succeeded")
	}
}

func TestLoadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"m/0002_b.sql":  {Data: []byte("B")},
		"m/0001_a.sql":  {Data: []byte("A")},
		"m/0010_c.sql":  {Data: []byte("C")},
		"m/README.md":   {Data: []byte("ignored")},
		"m/sub/0003.sq": {Data: []byte("ignored")},
	}
	ms, err := loadMigrations(good, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Name+"="+m.SQL)
	}
	if strings.Join(got, " ") != "0001_a=A 0002_b=B 0010_c=C" {
		t.Errorf("loaded %v", got)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no number":      {"m/core.sql": {}},
		"no underscore":  {"m/0001.sql": {}},
		"zero":           {"m/0000_x.sql": {}},
		"shared version": {"m/0001_a.sql": {}, "m/001_b.sql": {}},
	} {
		if _, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}

func TestMigrateRunner(t *testing.T) {
	ctx := context.Background()
	s := openSQLite(t)
	ms := []Migration{
		{1, "0001_a", "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
		{2, "0002_b", "CREATE TABLE b (y TEXT);"},
	}
	if err := s.migrate(ctx, ms); err != nil {
		t.Fatal(err)
	}
	// Running again applies nothing (the INSERT would duplicate the row).
	if err := s.migrate(ctx, ms); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("SELECT COUNT(*) FROM a"); n != 1 {
		t.Errorf("migration 1 ran %d times", n)
	}
	// A failing migration leaves nothing behind and stops the run.
	bad := append(ms, Migration{3, "0003_c", "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);"},
		Migration{4, "0004_d", "CREATE TABLE d (z INTEGER);"})
	err := s.migrate(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "0003_c") {
		t.Fatalf("failing migration: err = %v", err)
	}
	if n := count("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('c', 'd')"); n != 0 {
		t.Errorf("a failed run left %d tables", n)
	}
	if n := count("SELECT COUNT(*) FROM schema_migrations"); n != 2 {
		t.Errorf("schema_migrations has %d rows, want 2", n)
	}
	// Fixed, it applies, in order.
	bad[2].SQL = "CREATE TABLE c (z INTEGER);"
	if err := s.migrate(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if n := count("SELECT COUNT(*) FROM schema_migrations"); n != 4 {
		t.Errorf("schema_migrations has %d rows, want 4", n)
	}
	var name string
	if err := s.db.QueryRowContext(ctx, "SELECT name FROM schema_migrations WHERE version = 4").Scan(&name); err != nil || name != "0004_d" {
		t.Errorf("version 4 recorded as %q, %v", name, err)
	}
	// Versions this binary does not know are left alone.
	if err := s.migrate(ctx, ms); err != nil {
		t.Errorf("migrating a newer database: %v", err)
	}

	// The real migrations apply once, and not inside a transaction.
	s2 := openSQLite(t)
	if err := s2.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	err = s2.WithTx(ctx, func(tx store.Store) error { return tx.(*Store).Migrate(ctx) })
	if err == nil {
		t.Error("Migrate inside a transaction succeeded")
	}
}

// TestPlaceholders checks that the SQLite driver binds $N by number, also
// out of order and repeated, which the portable queries rely on.
func TestPlaceholders(t *testing.T) {
	s := openSQLite(t)
	var a, b, c string
	if err := s.db.QueryRow("SELECT $2, $1, $2 || $3", "one", "two", "three").Scan(&a, &b, &c); err != nil {
		t.Fatal(err)
	}
	if a != "two" || b != "one" || c != "twothree" {
		t.Errorf("bound %q %q %q", a, b, c)
	}
}

func TestPage(t *testing.T) {
	for _, tc := range []struct {
		p     store.Page
		limit int64
		start int64
	}{
		{store.Page{Start: 0, Limit: 25}, 26, 0},
		{store.Page{Start: 50, Limit: 25}, 26, 50},
		{store.Page{Start: -3, Limit: 1}, 2, 0},
		{store.Page{Start: 5}, 1<<63 - 1, 5},
	} {
		q, args := page("SELECT x FROM t WHERE y = $1", []any{"y"}, tc.p)
		if q != "SELECT x FROM t WHERE y = $1 LIMIT $2 OFFSET $3" {
			t.Errorf("query %q", q)
		}
		if len(args) != 3 || args[1] != tc.limit || args[2] != tc.start {
			t.Errorf("page(%+v) args %v", tc.p, args)
		}
	}
}

func TestLikePattern(t *testing.T) {
	for in, want := range map[string]string{
		"Abc":    "%abc%",
		"50%":    `%50\%%`,
		"a_b":    `%a\_b%`,
		`back\s`: `%back\\s%`,
		"ÉTÉ":    "%été%",
	} {
		if got := likePattern(in); got != want {
			t.Errorf("likePattern(%q) = %q, want %q", in, got, want)
		}
	}
}
