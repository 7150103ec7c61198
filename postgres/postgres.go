// Package postgres opens a PostgreSQL database through pgx
// (github.com/jackc/pgx/v5/stdlib) as a *sqlstore.Store, with the schema
// migrated. Several latch nodes may share one database and start at once:
// migrations run under a PostgreSQL advisory lock.
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/latchhq/latch/sqlstore"
)

// MaxConns bounds the connections one node opens to PostgreSQL.
const MaxConns = 20

// Open connects to the database at url (postgres://user:password@host/db?...,
// or any connection string pgx accepts; a Unix socket directory goes in
// host=) and migrates its schema. The store owns the connection pool: Close
// closes it.
func Open(ctx context.Context, dbURL string) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse connection string %s: %w", redact(dbURL), err)
	}
	db := stdlib.OpenDB(*cfg)
	// database/sql keeps only 2 idle connections by default: under load the
	// rest would be closed and reopened (a server process each) all the time.
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", redact(dbURL), err)
	}
	return open(ctx, db, dbURL)
}

func open(ctx context.Context, db *sql.DB, dbURL string) (*sqlstore.Store, error) {
	s, err := sqlstore.New(db, sqlstore.Postgres)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: migrate %s: %w", redact(dbURL), err)
	}
	return s, nil
}

// redact hides the password of a URL-form connection string for messages.
func redact(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		return "(connection string)"
	}
	return u.Redacted()
}
