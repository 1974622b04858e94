package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/go-sql-driver/mysql"
	"github.com/golang/glog"
)

// chunkRows is the most rows one statement carries.
const chunkRows = 500

// flushLogDDL is the one table of the tracker's own: per running tracker
// (instance), the sequence number of its last flush committed, written in
// every flush's transaction.
const flushLogDDL = "CREATE TABLE IF NOT EXISTS chihaya_flush (instance char(32) NOT NULL PRIMARY KEY," +
	" seq bigint NOT NULL, updated datetime NOT NULL) ENGINE=InnoDB"

func (c *Conn) initFlushLog(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, flushLogDDL); err != nil {
		return fmt.Errorf("creating the flush log (grant CREATE or run %q): %w", flushLogDDL, err)
	}
	// Rows of trackers that died long ago.
	if _, err := c.db.ExecContext(ctx, "DELETE FROM chihaya_flush WHERE updated < NOW() - INTERVAL 30 DAY"); err != nil {
		return fmt.Errorf("cleaning the flush log: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	c.instance = hex.EncodeToString(id[:])
	if _, err := c.db.ExecContext(ctx, "INSERT INTO chihaya_flush (instance, seq, updated) VALUES (?, 0, NOW())", c.instance); err != nil {
		return fmt.Errorf("initialising the flush log: %w", err)
	}
	return nil
}

// dropFlushLog removes this tracker's row once nothing is in doubt.
func (c *Conn) dropFlushLog(ctx context.Context) error {
	_, err := c.db.ExecContext(ctx, "DELETE FROM chihaya_flush WHERE instance = ?", c.instance)
	return err
}

// Flush writes every queued row now, in one transaction. On failure the
// rows stay queued for the next flush. A flush whose COMMIT got no answer
// is settled by the next one, which reads chihaya_flush under a lock: its
// rows are written again only if it did not commit.
func (c *Conn) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	b := c.acc.take()
	if b.rows() == 0 && c.doubt == nil {
		return nil
	}
	c.flying.Store(int64(b.rows() + c.doubtRows()))
	err := c.write(ctx, b)
	c.flying.Store(int64(c.doubtRows()))
	if err != nil {
		c.flushErrors.Add(1)
	}
	return err
}

func (c *Conn) doubtRows() int {
	if c.doubt == nil {
		return 0
	}
	return c.doubt.rows()
}

// write is one flush: the rows of b (and of a doubtful flush, if it turns
// out not to have committed) in one transaction.
func (c *Conn) write(ctx context.Context, b *batch) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		c.acc.giveBack(b)
		return err
	}
	fail := func(err error) error {
		tx.Rollback()
		c.acc.giveBack(b)
		return err
	}
	// Lock the flush log first. A doubtful flush's transaction holds this
	// lock until the server has committed or rolled it back, so what is
	// read here is its final outcome.
	var cur int64
	err = tx.QueryRowContext(ctx, "SELECT seq FROM chihaya_flush WHERE instance = ? FOR UPDATE", c.instance).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) { // deleted by hand
		_, err = tx.ExecContext(ctx, "INSERT INTO chihaya_flush (instance, seq, updated) VALUES (?, 0, NOW())", c.instance)
	}
	if err != nil {
		return fail(fmt.Errorf("reading the flush log: %w", err))
	}
	if c.doubt != nil {
		if cur == c.doubtSq {
			glog.Infof("mysql backend: the flush whose commit went unanswered did commit")
		} else {
			glog.Infof("mysql backend: the flush whose commit went unanswered did not commit: writing it again")
			c.doubt.absorb(b)
			b = c.doubt
		}
		c.doubt = nil
	}
	if b.rows() == 0 {
		tx.Rollback()
		return nil
	}
	if err := c.writeRows(ctx, tx, b); err != nil {
		return fail(err)
	}
	seq := max(c.seq, cur) + 1
	if _, err := tx.ExecContext(ctx, "UPDATE chihaya_flush SET seq = ?, updated = NOW() WHERE instance = ?", seq, c.instance); err != nil {
		return fail(fmt.Errorf("writing the flush log: %w", err))
	}
	c.seq = seq
	if err := c.commit(tx); err != nil {
		// Committed or not: nobody can say yet. The next flush will.
		c.doubt, c.doubtSq = b, seq
		return fmt.Errorf("commit went unanswered (settled by the next flush): %w", err)
	}
	return nil
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(K, K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

// execRows writes rows chunkRows at a time. A statement the database
// refuses for its data (not for being unreachable) is split in two and
// each half retried, down to the single bad row, which is dropped: one bad
// row never holds back the others. The transaction survives, since InnoDB
// rolls back only the failed statement.
func execRows[T any](ctx context.Context, c *Conn, tx *sql.Tx, table string, rows []T, build func([]T) (string, []any)) error {
	for len(rows) > 0 {
		n := min(len(rows), chunkRows)
		if err := execSplit(ctx, c, tx, table, rows[:n], build); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func execSplit[T any](ctx context.Context, c *Conn, tx *sql.Tx, table string, rows []T, build func([]T) (string, []any)) error {
	q, args := build(rows)
	_, err := tx.ExecContext(ctx, q, args...)
	if err == nil {
		return nil
	}
	if !isDataError(err) {
		return fmt.Errorf("%s: %w", table, err)
	}
	if len(rows) == 1 {
		c.dropped.Add(1)
		glog.Errorf("mysql backend: %s: dropping a row the database refuses: %v (%+v)", table, err, rows[0])
		return nil
	}
	h := len(rows) / 2
	if err := execSplit(ctx, c, tx, table, rows[:h], build); err != nil {
		return err
	}
	return execSplit(ctx, c, tx, table, rows[h:], build)
}

// isDataError reports whether the database refused a statement for the
// values it carries, which retrying cannot fix (as opposed to a lost
// connection, a deadlock or a lock wait timeout).
func isDataError(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1048, // column cannot be null
		1062,       // duplicate entry
		1216, 1452, // foreign key: no parent row
		1264,       // out of range
		1265,       // data truncated
		1292,       // incorrect value
		1364,       // no default value
		1366,       // incorrect string/integer value
		1406,       // data too long
		1690,       // value out of range (overflow in an expression)
		3819, 4025: // check constraint
		return true
	}
	return false
}
