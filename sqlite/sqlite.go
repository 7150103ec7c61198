// Package sqlite opens latch's embedded SQLite database (the pure-Go
// modernc.org/sqlite driver) as a *sqlstore.Store, with the schema migrated.
//
// Connections use WAL journaling, foreign keys, synchronous=NORMAL, a busy
// timeout, and BEGIN IMMEDIATE for transactions: readers run concurrently,
// writers take turns, and a transaction never fails with SQLITE_BUSY for
// upgrading a read lock to a write lock.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/latchhq/latch/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeoutMillis is how long a connection waits for another's write lock
// before failing with SQLITE_BUSY.
const BusyTimeoutMillis = 10000

// DSN returns the modernc.org/sqlite data source name for the database file
// at path, with latch's connection settings. The special path ":memory:"
// names a private in-memory database.
func DSN(path string) (string, error) {
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMillis))
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "synchronous(NORMAL)")
	params.Set("_txlock", "immediate")
	if path == ":memory:" {
		return "file::memory:?" + params.Encode(), nil
	}
	params.Add("_pragma", "journal_mode(WAL)")
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite: resolve %q: %w", path, err)
	}
	// A file: URI, so that '?', '#' and '%' in the path are escaped.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	return "file:" + strings.TrimPrefix(u.EscapedPath(), "//") + "?" + params.Encode(), nil
}

// Open opens (creating it if needed) the SQLite database at path and
// migrates its schema. The store owns the database: Close closes it.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	dsn, err := DSN(path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if path == ":memory:" {
		// Every connection would be a database of its own.
		db.SetMaxOpenConns(1)
	} else {
		// WAL lets readers run beside the one writer; more connections than
		// this only queue on SQLite's locks.
		n := max(4, 2*runtime.GOMAXPROCS(0))
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	}
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	s, err := sqlstore.New(db, sqlstore.SQLite)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Switching a new file to WAL takes an exclusive lock that SQLite's busy
	// handler does not wait for, so processes opening one fresh file at once
	// retry here for a while.
	for attempt := 0; ; attempt++ {
		err = db.PingContext(ctx)
		if err == nil {
			err = s.Migrate(ctx)
		}
		if err == nil || !isBusy(err) || attempt >= 100 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var e interface{ Code() int }
	if errors.As(err, &e) {
		return e.Code()&0xff == 5 // SQLITE_BUSY and its extended codes
	}
	return strings.Contains(err.Error(), "SQLITE_BUSY")
}
