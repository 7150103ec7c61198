package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statement cache. The store's queries come from
// a small, fixed set of templates; the bound only guards against a bug.
const maxCachedStmts = 512

// stmtCache keeps one prepared statement per query text. SQLite (the
// transpiled C of modernc.org/sqlite) spends far longer preparing the
// store's larger queries than running them, so on SQLite every query goes
// through this cache; database/sql then prepares each statement once per
// connection. pgx caches prepared statements itself, so PostgreSQL does not
// use it.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query. With prepare set, a
// statement not yet cached is prepared (on a connection of the pool, so
// never call it holding one, as inside a transaction: with every connection
// taken that would wait forever). It returns nil when the statement is not
// cached and not prepared, cannot be prepared (the caller then runs the
// query directly, which reports the error) or the cache is full.
func (c *stmtCache) get(ctx context.Context, query string, prepare bool) *sql.Stmt {
	c.mu.RLock()
	st, full := c.m[query], len(c.m) >= maxCachedStmts
	c.mu.RUnlock()
	if st != nil || !prepare || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[query]; prev != nil {
		st.Close() // prepared concurrently
		return prev
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// cachingQuerier runs queries through prepared statements of a stmtCache,
// inside tx when it is set.
type cachingQuerier struct {
	q     querier
	tx    *sql.Tx
	cache *stmtCache
}

func (c cachingQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if c.tx == nil {
		return c.cache.get(ctx, query, true)
	}
	// Inside a transaction, use a statement prepared earlier, on the
	// transaction's connection (which reuses the one already prepared there,
	// if any; closed with the transaction), or run the query directly.
	if st := c.cache.get(ctx, query, false); st != nil {
		return c.tx.StmtContext(ctx, st)
	}
	return nil
}

// ExecContext runs query through its prepared statement.
func (c cachingQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, query, args...)
}

// QueryContext runs query through its prepared statement.
func (c cachingQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query through its prepared statement.
func (c cachingQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, query, args...)
}
