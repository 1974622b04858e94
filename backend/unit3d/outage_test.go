package unit3d_test

import (
	"context"
	"testing"
	"time"

	"github.com/chihaya/chihaya/internal/mariadbtest"
)

// A database outage loses nothing: flushes fail while it lasts, the rows
// stay queued (merged with the announces that keep coming), and the first
// flush after it writes them, once.
func TestOutage(t *testing.T) {
	srv := mariadbtest.StartServer(t)
	b := newBedOn(t, srv, "", "")
	b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 10, ""))
	b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 100, 10, 10, ""))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := b.c.Flush(ctx); err == nil {
		t.Fatal("a flush succeeded with the database down")
	}
	cancel()
	// Announces are answered from memory meanwhile, and queued.
	ok(t, b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 300, 30, 0, "event=completed")))
	ok(t, b.announce(pk(3), query(ih(1), pid(3, 1), 6882, 0, 0, 10, "")))
	if b.c.QueueDepth() == 0 || b.c.FlushErrors() == 0 {
		t.Fatalf("queue depth %d, flush errors %d", b.c.QueueDepth(), b.c.FlushErrors())
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	b.flush()
	b.flush() // nothing twice
	for q, want := range map[string]int64{
		"SELECT uploaded FROM users WHERE id = 2":                        300,
		"SELECT downloaded FROM users WHERE id = 2":                      30,
		"SELECT actual_uploaded FROM history WHERE user_id = 2":          300,
		"SELECT client_uploaded FROM history WHERE user_id = 2":          300,
		"SELECT completed_at IS NOT NULL FROM history WHERE user_id = 2": 1,
		"SELECT times_completed FROM torrents WHERE id = 1":              1,
		"SELECT seeders FROM torrents WHERE id = 1":                      1,
		"SELECT leechers FROM torrents WHERE id = 1":                     1,
		"SELECT COUNT(*) FROM peers":                                     2,
	} {
		if got := b.int(q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
	if b.c.QueueDepth() != 0 || b.c.DroppedRows() != 0 {
		t.Errorf("queue depth %d, %d rows dropped", b.c.QueueDepth(), b.c.DroppedRows())
	}
}

// Closing (the daemon's SIGTERM) while the database is away waits for it
// to come back, within its deadline, and writes everything.
func TestCloseWaitsForTheDatabase(t *testing.T) {
	srv := mariadbtest.StartServer(t)
	b := newBedOn(t, srv, "", "")
	b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 10, ""))
	b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 70, 0, 10, ""))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(3 * time.Second)
		if err := srv.Restart(); err != nil {
			t.Error(err)
		}
	}()
	if err := b.close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := b.int("SELECT uploaded FROM users WHERE id = 2"); got != 70 {
		t.Errorf("users.uploaded %d, want 70", got)
	}
}

// A hard-deleted torrent (UNIT3D only soft-deletes, but an admin may not)
// does not hold back the rows of the same flush, as it does in
// UNIT3D-Announce, where the whole batch is refused and retried forever:
// its rows are filtered out and counted, the others written.
func TestHardDeletedTorrent(t *testing.T) {
	b := newBed(t, "", "")
	b.announce(pk(2), query(ih(8), pid(2, 1), 6881, 0, 0, 10, ""))
	b.announce(pk(2), query(ih(9), pid(2, 2), 6882, 0, 0, 10, ""))
	b.flush()
	b.announce(pk(2), query(ih(8), pid(2, 1), 6881, 50, 0, 10, ""))
	b.announce(pk(2), query(ih(9), pid(2, 2), 6882, 60, 0, 10, ""))
	b.exec("DELETE FROM torrents WHERE id = 8") // cascades to its peers and history
	b.flush()
	if got := b.int("SELECT actual_uploaded FROM history WHERE torrent_id = 9"); got != 60 {
		t.Errorf("torrent 9's history: %d uploaded, want 60", got)
	}
	if got := b.int("SELECT COUNT(*) FROM torrents WHERE id = 8"); got != 0 {
		t.Error("the deleted torrent came back as a dummy row")
	}
	if got := b.int("SELECT uploaded FROM users WHERE id = 2"); got != 110 {
		t.Errorf("users.uploaded %d, want 110 (credit of both)", got)
	}
	if b.c.DroppedRows() == 0 || b.c.QueueDepth() != 0 {
		t.Errorf("%d rows dropped, %d queued", b.c.DroppedRows(), b.c.QueueDepth())
	}
}

// A row the database refuses for a reason nobody filtered (here a trigger
// refusing one user's history) is isolated by bisection and dropped alone.
func TestRefusedRowIsolated(t *testing.T) {
	b := newBed(t, `CREATE TRIGGER no_grace BEFORE INSERT ON history FOR EACH ROW
		IF NEW.user_id = 8 THEN SIGNAL SQLSTATE '45000' SET MYSQL_ERRNO = 1292, MESSAGE_TEXT = 'refused'; END IF;`, "")
	for _, u := range []int{2, 3, 8, 9} {
		b.announce(pk(u), query(ih(1), pid(u, 1), 6880+u, 0, 0, 10, ""))
	}
	b.flush()
	if got := b.int("SELECT COUNT(*) FROM history"); got != 3 {
		t.Errorf("%d history rows, want 3", got)
	}
	if got := b.c.DroppedRows(); got != 1 {
		t.Errorf("%d rows dropped, want 1", got)
	}
	if got := b.int("SELECT COUNT(*) FROM peers"); got != 4 {
		t.Errorf("%d peers rows, want 4", got)
	}
}
