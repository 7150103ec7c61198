// Package sqlstore implements store.Store over database/sql, once for both
// SQLite and PostgreSQL. It writes portable SQL only ($1 placeholders,
// RETURNING, ON CONFLICT), keeps numbered migrations per dialect embedded in
// the binary, and maps database errors to latch domain errors: a missing row
// wraps latch.ErrNotFound, a uniqueness violation latch.ErrConflict.
//
// The sqlite and postgres packages open a database, run the migrations and
// return a *Store; New and Migrate serve callers that bring their own *sql.DB.
//
// Writes that can conflict are written so that a conflict does not raise a
// database error (ON CONFLICT DO NOTHING, guarded UPDATEs): a caller that gets
// ErrConflict inside a PostgreSQL transaction may go on using the transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// Dialect names the SQL database behind a Store. It selects the migrations
// and how driver errors are classified; the queries are the same.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

func (d Dialect) valid() bool { return d == SQLite || d == Postgres }

// querier is what *sql.DB and *sql.Tx have in common; every query of the
// store goes through one.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ querier     = (*sql.DB)(nil)
	_ querier     = (*sql.Tx)(nil)
	_ store.Store = (*Store)(nil)
)

// Store is a store.Store over a *sql.DB, or bound to one *sql.Tx inside
// WithTx. It is safe for concurrent use, except a transaction-bound Store,
// which belongs to the goroutine running the transaction.
type Store struct {
	db      *sql.DB
	q       querier
	tx      *sql.Tx // non-nil when bound to a transaction
	depth   int     // savepoint nesting depth inside tx
	dialect Dialect
	stmts   *stmtCache    // nil unless SQLite
	writer  chan struct{} // SQLite: held by the one write transaction; nil for PostgreSQL
}

// writerWait bounds how long a SQLite transaction waits for another to end,
// as SQLite's busy timeout would.
const writerWait = 10 * time.Second

// New returns a Store over db speaking dialect. It does not touch the
// database; call Migrate before use.
func New(db *sql.DB, dialect Dialect) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *sql.DB")
	}
	if !dialect.valid() {
		return nil, fmt.Errorf("sqlstore: unknown dialect %q", dialect)
	}
	s := &Store{db: db, q: db, dialect: dialect}
	if dialect == SQLite {
		s.stmts = newStmtCache(db)
		s.q = cachingQuerier{q: db, cache: s.stmts}
		s.writer = make(chan struct{}, 1)
	}
	return s, nil
}

// bind returns a copy of s bound to tx at savepoint depth.
func (s *Store) bind(tx *sql.Tx, depth int) *Store {
	b := &Store{db: s.db, q: tx, tx: tx, depth: depth, dialect: s.dialect, stmts: s.stmts, writer: s.writer}
	if s.stmts != nil {
		b.q = cachingQuerier{q: tx, tx: tx, cache: s.stmts}
	}
	return b
}

// DB returns the underlying database handle, for packages that keep their
// own tables in the same database.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the store's SQL dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the database. On a Store bound to a transaction it does
// nothing: the transaction belongs to the enclosing WithTx.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	if s.stmts != nil {
		s.stmts.close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// WithTx runs fn with a Store bound to one transaction, committing when fn
// returns nil and rolling back when it returns an error or panics. Called on
// a Store that is already bound to a transaction, it reuses that transaction
// inside a savepoint, so that an error from fn undoes only fn's writes.
//
// Inside fn, use only the Store passed to fn: on SQLite another connection
// would wait for the transaction's write lock (and with ":memory:", which
// has a single connection, forever).
func (s *Store) WithTx(ctx context.Context, fn func(store.Store) error) (err error) {
	if s.tx != nil {
		return s.withSavepoint(ctx, fn)
	}
	if s.writer != nil {
		// SQLite has one writer at a time. Transactions queue here, holding
		// no connection, rather than in BEGIN IMMEDIATE: there each waiter
		// holds a pooled connection and polls SQLite's lock, and with the
		// pool taken the transaction holding the lock could wait for a
		// connection until the waiters time out.
		wait := time.NewTimer(writerWait)
		select {
		case s.writer <- struct{}{}:
			wait.Stop()
		case <-ctx.Done():
			wait.Stop()
			return fmt.Errorf("sqlstore: begin transaction: %w", ctx.Err())
		case <-wait.C:
			return fmt.Errorf("sqlstore: begin transaction: another transaction held the database for %v", writerWait)
		}
		defer func() { <-s.writer }()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin transaction: %w", err)
	}
	ts := s.bind(tx, 0)
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(ts); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", s.mapErr(err))
	}
	return nil
}

func (s *Store) withSavepoint(ctx context.Context, fn func(store.Store) error) error {
	name := fmt.Sprintf("latch_sp_%d", s.depth+1)
	if _, err := s.tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("sqlstore: savepoint: %w", err)
	}
	inner := s.bind(s.tx, s.depth+1)
	panicked := true
	defer func() {
		if panicked {
			// Leave the outer transaction usable; its WithTx rolls it back.
			_, _ = s.tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT "+name)
		}
	}()
	err := fn(inner)
	panicked = false
	if err != nil {
		if _, rerr := s.tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: rollback to savepoint: %w", rerr))
		}
		if _, rerr := s.tx.ExecContext(context.WithoutCancel(ctx), "RELEASE SAVEPOINT "+name); rerr != nil {
			return errors.Join(err, fmt.Errorf("sqlstore: release savepoint: %w", rerr))
		}
		return err
	}
	if _, err := s.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("sqlstore: release savepoint: %w", s.mapErr(err))
	}
	return nil
}

// atomic runs fn in a transaction of its own, or in the caller's one.
func (s *Store) atomic(ctx context.Context, fn func(*Store) error) error {
	return s.WithTx(ctx, func(st store.Store) error { return fn(st.(*Store)) })
}

// Error classification. Drivers are not imported: modernc.org/sqlite errors
// have Code() int (extended result codes) and pgx errors SQLState() string.

const (
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

func (s *Store) isUniqueViolation(err error) bool {
	switch s.dialect {
	case SQLite:
		var e interface{ Code() int }
		if errors.As(err, &e) {
			return e.Code() == sqliteConstraintUnique || e.Code() == sqliteConstraintPrimaryKey
		}
	case Postgres:
		var e interface{ SQLState() string }
		if errors.As(err, &e) {
			return e.SQLState() == "23505"
		}
	}
	return false
}

func (s *Store) isForeignKeyViolation(err error) bool {
	switch s.dialect {
	case SQLite:
		var e interface{ Code() int }
		if errors.As(err, &e) {
			return e.Code() == sqliteConstraintForeignKey
		}
	case Postgres:
		var e interface{ SQLState() string }
		if errors.As(err, &e) {
			return e.SQLState() == "23503"
		}
	}
	return false
}

// mapErr turns driver errors that slipped past the guarded statements (a
// race between two writers) into domain errors.
func (s *Store) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", latch.ErrNotFound, err)
	case s.isUniqueViolation(err):
		return &latch.Error{Kind: latch.ErrConflict, Message: "The entity already exists.", Exception: latch.ExDuplicate}
	case s.isForeignKeyViolation(err):
		return fmt.Errorf("%w: a referenced entity does not exist: %w", latch.ErrNotFound, err)
	case s.isBadText(err):
		return latch.Invalidf("Text must be valid UTF-8 without NUL characters.")
	}
	return err
}

// isBadText reports whether PostgreSQL refused text it cannot store (a NUL
// byte, invalid UTF-8): bad input, not a server failure.
func (s *Store) isBadText(err error) bool {
	var e interface{ SQLState() string }
	if s.dialect == Postgres && errors.As(err, &e) {
		switch e.SQLState() {
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			return true
		}
	}
	return false
}

// wrap adds context to an unexpected error, keeping domain errors as they
// are so that their message reaches the client.
func (s *Store) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var de *latch.Error
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("sqlstore: "+format+": %w", append(args, s.mapErr(err))...)
}

func duplicate(format string, args ...any) error {
	return &latch.Error{Kind: latch.ErrConflict, Message: fmt.Sprintf(format, args...), Exception: latch.ExDuplicate}
}

func noSuchUserID(id int64) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("User %d does not exist.", id), Exception: latch.ExNoSuchUser}
}

func noSuchGroupID(id int64) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("Group %d does not exist.", id), Exception: latch.ExNoSuchGroup}
}

func noSuchProjectID(id int64) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("Project %d does not exist.", id), Exception: latch.ExNoSuchProject}
}

func noSuchRepoID(id int64) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("Repository %d does not exist.", id), Exception: latch.ExNoSuchRepository}
}

// exists reports whether query returns a row.
func (s *Store) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var one int
	err := s.q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// page appends "LIMIT $n OFFSET $m" for p to query, fetching Limit+1 rows so
// that callers can tell whether another page follows. A Limit of zero or less
// means no limit.
func page(query string, args []any, p store.Page) (string, []any) {
	limit := int64(math.MaxInt64)
	if p.Limit > 0 {
		limit = int64(p.Limit) + 1
	}
	start := int64(max(p.Start, 0))
	args = append(args, limit, start)
	return fmt.Sprintf("%s LIMIT $%d OFFSET $%d", query, len(args)-1, len(args)), args
}

// likePattern returns a LIKE pattern (with ESCAPE '\') matching text as a
// case-insensitive substring of a *_lower column.
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(text)) + "%"
}

// rowsAffected returns how many rows res changed.
func rowsAffected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// whereAnd joins conditions into a WHERE clause, or "" for none.
func whereAnd(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}
