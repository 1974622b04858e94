package mysql

import (
	"context"
	"database/sql"

	"github.com/chihaya/chihaya/backend/sqlbatch"
)

// The flush itself (one transaction, exactly once, the bisection of refused
// rows) is package sqlbatch's, shared with the UNIT3D backend; this file
// wires it to Gazelle's batch. What a flush writes is statements.go's.

// Rows is the number of rows in b.
func (b *batch) Rows() int { return b.rows() }

// Absorb merges newer rows into b (see absorb).
func (b *batch) Absorb(newer *batch) { b.absorb(newer) }

// initFlusher sets up the shared flush machinery over c's queue.
func (c *Conn) initFlusher() {
	c.fl = sqlbatch.Flusher[*batch]{
		DB:       c.db,
		Name:     "mysql backend",
		Take:     c.acc.Take,
		GiveBack: c.acc.GiveBack,
		Write:    c.writeRows,
		Commit:   func(tx *sql.Tx) error { return c.commit(tx) },
	}
}

// Flush writes every queued row now, in one transaction. On failure the
// rows stay queued for the next flush. A flush whose COMMIT got no answer
// is settled by the next one, which reads chihaya_flush under a lock: its
// rows are written again only if it did not commit.
func (c *Conn) Flush(ctx context.Context) error { return c.fl.Flush(ctx) }

func (c *Conn) dropper() sqlbatch.Dropper {
	return sqlbatch.Dropper{Name: "mysql backend", Count: &c.dropped}
}

// execRows writes rows in chunks through sqlbatch.ExecRows: a row the
// database refuses is isolated and dropped alone.
func execRows[T any](ctx context.Context, c *Conn, tx *sql.Tx, table string, rows []T, build func([]T) (string, []any)) error {
	return sqlbatch.ExecRows(ctx, tx, c.dropper(), table, rows, build)
}

// addSat adds without wrapping around.
var addSat = sqlbatch.AddSat
