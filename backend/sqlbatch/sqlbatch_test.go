package sqlbatch

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// The flush itself (Flusher, ExecRows) is tested against MariaDB by its
// users, backend/mysql (outage_test.go, strict_test.go) and backend/unit3d
// (outage_test.go); these are its pure parts.

func TestAddSat(t *testing.T) {
	for _, tc := range []struct{ a, b, want int64 }{
		{1, 2, 3}, {-1, -2, -3}, {math.MaxInt64, 1, math.MaxInt64}, {math.MinInt64, -1, math.MinInt64},
		{math.MaxInt64, -1, math.MaxInt64 - 1}, {math.MinInt64, math.MaxInt64, -1},
	} {
		if got := AddSat(tc.a, tc.b); got != tc.want {
			t.Errorf("AddSat(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		row  string
		n    int
		want string
	}{{"(?, ?)", 1, "(?, ?)"}, {"(?, ?)", 3, "(?, ?),(?, ?),(?, ?)"}, {"?", 0, ""}} {
		if got := Placeholders(tc.row, tc.n); got != tc.want {
			t.Errorf("Placeholders(%q, %d) = %q, want %q", tc.row, tc.n, got, tc.want)
		}
	}
}

func TestIsDataError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1452}, true},
		{fmt.Errorf("peers: %w", &mysql.MySQLError{Number: 1406}), true},
		{&mysql.MySQLError{Number: 1213}, false}, // deadlock: retry
		{&mysql.MySQLError{Number: 1205}, false}, // lock wait timeout
		{mysql.ErrInvalidConn, false},
		{errors.New("connection refused"), false},
	} {
		if got := IsDataError(tc.err); got != tc.want {
			t.Errorf("IsDataError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSortedKeys(t *testing.T) {
	got := SortedKeys(map[uint32]bool{3: true, 1: false, 2: true}, cmp.Compare[uint32])
	if !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Errorf("SortedKeys = %v", got)
	}
}

// rowsBatch is a Batch of numbered rows, for Queue's test.
type rowsBatch struct{ rows []int }

func (b *rowsBatch) Rows() int               { return len(b.rows) }
func (b *rowsBatch) Absorb(newer *rowsBatch) { b.rows = append(b.rows, newer.rows...) }

// TestQueue: Take empties the queue, GiveBack puts a failed flush's rows
// back before those queued since.
func TestQueue(t *testing.T) {
	var q Queue[*rowsBatch]
	q.Init(func() *rowsBatch { return &rowsBatch{} })
	add := func(n int) { q.Add(func(b *rowsBatch) { b.rows = append(b.rows, n) }) }
	add(1)
	add(2)
	b := q.Take()
	if q.Rows() != 0 || b.Rows() != 2 {
		t.Fatalf("after Take: %d queued, %d taken; want 0, 2", q.Rows(), b.Rows())
	}
	add(3)
	q.GiveBack(b)
	if got := q.Take().rows; !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("after GiveBack: %v, want [1 2 3]", got)
	}
}
