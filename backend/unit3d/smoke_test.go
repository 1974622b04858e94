package unit3d_test

import "testing"

func TestSmoke(t *testing.T) {
	b := newBed(t, "", "")
	got := b.announce(pk(2), query(ih(1), pid(2, 1), 6881, 0, 0, 0, "event=started"))
	t.Logf("%q", got)
	got = b.announce(pk(3), query(ih(1), pid(3, 1), 6882, 0, 0, 100, "event=started"))
	t.Logf("%q", got)
	t.Log(b.api("GET", "torrents/1", ""))
	t.Log(b.api("GET", "users/2", ""))
	t.Log(b.api("GET", "stats", ""))
	b.flush()
	t.Log(b.int("SELECT COUNT(*) FROM peers"), b.int("SELECT COUNT(*) FROM history"), b.int("SELECT seeders FROM torrents WHERE id=1"))
}
