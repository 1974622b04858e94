// Package sqlbatch is the MySQL machinery the site backends share: rows
// queued in memory are written every flush in one transaction, exactly
// once, and a row the database refuses is isolated and dropped alone.
//
// A Flusher writes a backend's batch (its own rows, its own statements)
// in one transaction that also advances the backend's row in the table
// chihaya_flush. A flush whose COMMIT got no answer is settled by the next
// flush, which reads that row under a lock: the rows are written again
// only if the first did not commit. Until a flush succeeds its rows stay
// queued (a database outage loses nothing). ExecRows writes a table's rows
// in chunks and splits a chunk the database refuses for its data down to
// the bad row.
//
// The Gazelle backend (backend/mysql) and the UNIT3D backend
// (backend/unit3d) both flush through it.
package sqlbatch

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/golang/glog"
)

// ChunkRows is the most rows one statement carries.
const ChunkRows = 500

// FlushLogDDL is the one table of the tracker's own: per running tracker
// (instance), the sequence number of its last flush committed, written in
// every flush's transaction.
const FlushLogDDL = "CREATE TABLE IF NOT EXISTS chihaya_flush (instance char(32) NOT NULL PRIMARY KEY," +
	" seq bigint NOT NULL, updated datetime NOT NULL) ENGINE=InnoDB"

// Batch is a set of queued rows of one backend.
type Batch[B any] interface {
	// Rows is the number of rows in the batch.
	Rows() int
	// Absorb merges newer's rows into the batch, the older one.
	Absorb(newer B)
}

// Flusher writes a backend's queued batches, one transaction per flush.
// Its function fields are set before Init; it is then safe for concurrent
// use.
type Flusher[B Batch[B]] struct {
	// DB is the site's database.
	DB *sql.DB
	// Name prefixes log lines ("mysql backend").
	Name string
	// Take hands the queued rows over to a flush.
	Take func() B
	// GiveBack queues the rows of a flush that did not happen again,
	// before the rows queued since.
	GiveBack func(B)
	// Write writes a batch's rows in tx (with ExecRows).
	Write func(ctx context.Context, tx *sql.Tx, b B) error
	// Commit commits a flush's transaction; nil means tx.Commit. Tests
	// replace it to lose answers.
	Commit func(*sql.Tx) error

	mu       sync.Mutex // serialises flushes
	instance string     // this tracker's row in chihaya_flush
	seq      int64      // last flush sequence number used
	doubt    B          // a flush whose COMMIT got no answer, if hasDoubt
	hasDoubt bool
	doubtSq  int64 // its sequence number
	flying   atomic.Int64
	errors   atomic.Uint64
}

// Init connects to the database, creates the flush log if need be, forgets
// the rows of trackers that died long ago and adds this tracker's row.
func (f *Flusher[B]) Init(ctx context.Context) error {
	if err := f.DB.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	if _, err := f.DB.ExecContext(ctx, FlushLogDDL); err != nil {
		return fmt.Errorf("creating the flush log (grant CREATE or run %q): %w", FlushLogDDL, err)
	}
	if _, err := f.DB.ExecContext(ctx, "DELETE FROM chihaya_flush WHERE updated < NOW() - INTERVAL 30 DAY"); err != nil {
		return fmt.Errorf("cleaning the flush log: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	f.instance = hex.EncodeToString(id[:])
	if _, err := f.DB.ExecContext(ctx, "INSERT INTO chihaya_flush (instance, seq, updated) VALUES (?, 0, NOW())", f.instance); err != nil {
		return fmt.Errorf("initialising the flush log: %w", err)
	}
	return nil
}

// Drop removes this tracker's row from the flush log, once nothing is in
// doubt (after the last flush).
func (f *Flusher[B]) Drop(ctx context.Context) error {
	_, err := f.DB.ExecContext(ctx, "DELETE FROM chihaya_flush WHERE instance = ?", f.instance)
	return err
}

// InFlight is the number of rows a flush is writing now or whose flush is
// in doubt: queued rows not counted by the backend's own queue.
func (f *Flusher[B]) InFlight() int { return int(f.flying.Load()) }

// Errors is the number of flushes that failed.
func (f *Flusher[B]) Errors() uint64 { return f.errors.Load() }

// Flush writes every queued row now, in one transaction. On failure the
// rows stay queued for the next flush.
func (f *Flusher[B]) Flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.Take()
	if b.Rows() == 0 && !f.hasDoubt {
		return nil
	}
	f.flying.Store(int64(b.Rows() + f.doubtRows()))
	err := f.write(ctx, b)
	f.flying.Store(int64(f.doubtRows()))
	if err != nil {
		f.errors.Add(1)
	}
	return err
}

func (f *Flusher[B]) doubtRows() int {
	if !f.hasDoubt {
		return 0
	}
	return f.doubt.Rows()
}

// Final is a backend's last flush, when it closes: it flushes until
// nothing is queued (queued counts the backend's queue; what is in flight
// is added), retrying every second while the database is away, until
// deadline; then it removes this tracker's row from the flush log.
func (f *Flusher[B]) Final(deadline time.Time, queued func() int) error {
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := f.Flush(ctx)
		cancel()
		left := queued() + f.InFlight()
		if err == nil && left == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return f.Drop(ctx)
		}
		if time.Now().Add(time.Second).After(deadline) {
			if err == nil {
				err = fmt.Errorf("%d rows left unwritten", left)
			}
			return err
		}
		time.Sleep(time.Second)
	}
}

// write is one flush: the rows of b (and of a doubtful flush, if it turns
// out not to have committed) in one transaction.
func (f *Flusher[B]) write(ctx context.Context, b B) error {
	tx, err := f.DB.BeginTx(ctx, nil)
	if err != nil {
		f.GiveBack(b)
		return err
	}
	fail := func(err error) error {
		tx.Rollback()
		f.GiveBack(b)
		return err
	}
	// Lock the flush log first. A doubtful flush's transaction holds this
	// lock until the server has committed or rolled it back, so what is
	// read here is its final outcome.
	var cur int64
	err = tx.QueryRowContext(ctx, "SELECT seq FROM chihaya_flush WHERE instance = ? FOR UPDATE", f.instance).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) { // deleted by hand
		_, err = tx.ExecContext(ctx, "INSERT INTO chihaya_flush (instance, seq, updated) VALUES (?, 0, NOW())", f.instance)
	}
	if err != nil {
		return fail(fmt.Errorf("reading the flush log: %w", err))
	}
	if f.hasDoubt {
		if cur == f.doubtSq {
			glog.Infof("%s: the flush whose commit went unanswered did commit", f.Name)
		} else {
			glog.Infof("%s: the flush whose commit went unanswered did not commit: writing it again", f.Name)
			f.doubt.Absorb(b)
			b = f.doubt
		}
		var zero B
		f.doubt, f.hasDoubt = zero, false
	}
	if b.Rows() == 0 {
		tx.Rollback()
		return nil
	}
	if err := f.Write(ctx, tx, b); err != nil {
		return fail(err)
	}
	seq := max(f.seq, cur) + 1
	if _, err := tx.ExecContext(ctx, "UPDATE chihaya_flush SET seq = ?, updated = NOW() WHERE instance = ?", seq, f.instance); err != nil {
		return fail(fmt.Errorf("writing the flush log: %w", err))
	}
	f.seq = seq
	commit := f.Commit
	if commit == nil {
		commit = (*sql.Tx).Commit
	}
	if err := commit(tx); err != nil {
		// Committed or not: nobody can say yet. The next flush will.
		f.doubt, f.hasDoubt, f.doubtSq = b, true, seq
		return fmt.Errorf("commit went unanswered (settled by the next flush): %w", err)
	}
	return nil
}

// OpenDB opens a site's database as the backends use it: statements sent
// with their arguments interpolated (one round trip each, instead of
// prepare, execute, close), timeouts where the DSN sets none, and a small
// pool (the flusher and the loads are its only users). session, if not
// nil, adjusts the connection settings first (a time zone, say).
func OpenDB(dsn string, session func(*mysql.Config)) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn: %v", err)
	}
	if session != nil {
		session(cfg)
	}
	cfg.InterpolateParams = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("dsn: %v", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxLifetime(10 * time.Minute)
	return db, nil
}

// Dropper counts and logs the rows given up.
type Dropper struct {
	// Name prefixes log lines.
	Name string
	// Count counts the rows dropped.
	Count *atomic.Uint64
}

// ExecRows writes rows ChunkRows at a time, each chunk as the statement
// build returns. A statement the database refuses for its data (not for
// being unreachable) is split in two and each half retried, down to the
// single bad row, which is dropped: one bad row never holds back the
// others. The transaction survives, since InnoDB rolls back only the
// failed statement.
func ExecRows[T any](ctx context.Context, tx *sql.Tx, d Dropper, table string, rows []T, build func([]T) (string, []any)) error {
	for len(rows) > 0 {
		n := min(len(rows), ChunkRows)
		if err := execSplit(ctx, tx, d, table, rows[:n], build); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func execSplit[T any](ctx context.Context, tx *sql.Tx, d Dropper, table string, rows []T, build func([]T) (string, []any)) error {
	q, args := build(rows)
	_, err := tx.ExecContext(ctx, q, args...)
	if err == nil {
		return nil
	}
	if !IsDataError(err) {
		return fmt.Errorf("%s: %w", table, err)
	}
	if len(rows) == 1 {
		d.Count.Add(1)
		glog.Errorf("%s: %s: dropping a row the database refuses: %v (%+v)", d.Name, table, err, rows[0])
		return nil
	}
	h := len(rows) / 2
	if err := execSplit(ctx, tx, d, table, rows[:h], build); err != nil {
		return err
	}
	return execSplit(ctx, tx, d, table, rows[h:], build)
}

// IsDataError reports whether the database refused a statement for the
// values it carries, which retrying cannot fix (as opposed to a lost
// connection, a deadlock or a lock wait timeout).
func IsDataError(err error) bool {
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

// SortedKeys returns m's keys in compare's order, so that concurrent
// writers lock rows in one order.
func SortedKeys[K comparable, V any](m map[K]V, compare func(K, K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

// AddSat adds without wrapping around.
func AddSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// Placeholders returns n comma-separated copies of row, for a multi-row
// VALUES list.
func Placeholders(row string, n int) string {
	b := make([]byte, 0, n*(len(row)+1))
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, row...)
	}
	return string(b)
}

// Queue is a backend's pending batch, between announces and flushes. Its
// mutex guards Pending, and whatever of the backend's state goes with it;
// it is never held across I/O. Take and GiveBack are a Flusher's.
type Queue[B Batch[B]] struct {
	sync.Mutex
	// Pending holds the rows queued since the last flush took them.
	Pending  B
	newBatch func() B
}

// Init makes an empty pending batch with newBatch, as Take will.
func (q *Queue[B]) Init(newBatch func() B) {
	q.newBatch = newBatch
	q.Pending = newBatch()
}

// Add runs f on the pending batch, under the lock.
func (q *Queue[B]) Add(f func(B)) {
	q.Lock()
	defer q.Unlock()
	f(q.Pending)
}

// Take hands the pending rows over to a flush.
func (q *Queue[B]) Take() B {
	q.Lock()
	defer q.Unlock()
	b := q.Pending
	q.Pending = q.newBatch()
	return b
}

// GiveBack queues the rows of a flush that did not happen again, before
// those queued since.
func (q *Queue[B]) GiveBack(b B) {
	q.Lock()
	defer q.Unlock()
	b.Absorb(q.Pending)
	q.Pending = b
}

// Rows is the number of pending rows.
func (q *Queue[B]) Rows() int {
	q.Lock()
	defer q.Unlock()
	return q.Pending.Rows()
}
