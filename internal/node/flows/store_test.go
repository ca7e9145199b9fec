package flows

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openTest(t *testing.T, path string, c *clock, maxBytes int64) *Store {
	t.Helper()
	s, err := OpenStore(StoreConfig{Path: path, Now: c.now, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rec(start time.Time, id uint32, remote string, slice string, xid int) Record {
	r := Record{
		Start: start, End: start.Add(2 * time.Second), Proto: 6,
		Inside: netip.MustParseAddrPort("10.42.0.6:40000"), Public: netip.MustParseAddrPort("192.0.2.1:40000"),
		Remote:    netip.MustParseAddrPort(remote),
		BytesSent: 1000, PacketsSent: 10, BytesReceived: 500, PacketsReceived: 8,
		XID: xid, Slice: slice, SliceID: int64(xid) + 100,
	}
	r.Key = MakeKey(start, id)
	return r
}

func TestRecordCodecRoundTrip(t *testing.T) {
	r := rec(t0, 7, "203.0.113.7:22", "princeton_test", 5)
	r.Flags = FlagOpen
	r.Dir = In
	got, err := decodeRecord(r.encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	got.Key = r.Key
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	r6 := rec(t0, 8, "[2001:db8::7]:443", "", 0)
	got, err = decodeRecord(r6.encode(nil))
	if err != nil || got.Remote != r6.Remote {
		t.Fatalf("ipv6: %+v %v", got, err)
	}
	if n := len(r.encode(nil)); n > 64 {
		t.Errorf("encoded record is %d bytes, want at most 64", n)
	}
	for i := 0; i < len(r.encode(nil)); i++ {
		if _, err := decodeRecord(r.encode(nil)[:i]); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(rec(t0, 7, "203.0.113.7:22", "s", 5).encode(nil))
	f.Add([]byte{1, 0, 6, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		r2, err := decodeRecord(r.encode(nil))
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoding a decoded record: %v\n%+v\n%+v", err, r, r2)
		}
	})
}

func TestStoreQueryIndexAndRestart(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	path := filepath.Join(t.TempDir(), "flows.db")
	s := openTest(t, path, c, 1<<30)
	var recs []Record
	for i := 0; i < 50; i++ {
		remote := "203.0.113.7:22"
		if i%2 == 1 {
			remote = fmt.Sprintf("198.51.100.%d:80", i)
		}
		recs = append(recs, rec(t0.Add(time.Duration(i)*time.Second), uint32(i), remote, "pl_a", 3))
	}
	if err := s.Put(recs); err != nil {
		t.Fatal(err)
	}
	// Restart: everything is there after reopening.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, c, 1<<30)
	defer s.Close()
	p, err := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.7")})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 25 || p.Next != "" {
		t.Fatalf("got %d records (next %q), want 25", len(p.Records), p.Next)
	}
	for i, r := range p.Records {
		if r.Remote.Addr().String() != "203.0.113.7" || r.Slice != "pl_a" || r.Key != recs[2*i].Key {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// Pagination: pages of 10 give the same 25 in order.
	var all []Record
	q := Query{Remote: netip.MustParseAddr("203.0.113.7"), Limit: 10}
	for {
		p, err := s.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Records...)
		if p.Next == "" {
			break
		}
		if q.After, err = ParseKey(p.Next); err != nil {
			t.Fatal(err)
		}
	}
	if len(all) != 25 || all[24].Key != recs[48].Key {
		t.Fatalf("paginated: %d records", len(all))
	}
	// Port, protocol and window filters.
	if p, _ := s.Query(Query{Remote: netip.MustParseAddr("198.51.100.3"), Port: 80}); len(p.Records) != 1 {
		t.Errorf("port 80: %d records", len(p.Records))
	}
	if p, _ := s.Query(Query{Remote: netip.MustParseAddr("198.51.100.3"), Port: 22}); len(p.Records) != 0 {
		t.Errorf("port 22: %d records", len(p.Records))
	}
	if p, _ := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.7"), Proto: 17}); len(p.Records) != 0 {
		t.Errorf("udp: %d records", len(p.Records))
	}
	if p, _ := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.7"), Since: t0.Add(20 * time.Second), Until: t0.Add(30 * time.Second)}); len(p.Records) != 7 {
		t.Errorf("window of 10 s: %d records, want 7 (starts 18..30 s, each lasting 2 s)", len(p.Records))
	}
}

func TestStoreQueryErrors(t *testing.T) {
	c := &clock{t0}
	s := openTest(t, filepath.Join(t.TempDir(), "f.db"), c, 1<<30)
	defer s.Close()
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{}, "addr: is required"},
		{Query{Remote: netip.MustParseAddr("192.0.2.9"), Since: t0, Until: t0.Add(-time.Hour)}, "is not before until"},
		{Query{Remote: netip.MustParseAddr("192.0.2.9"), Since: t0.Add(-3 * 365 * 24 * time.Hour)}, "longer than 92 days"},
		{Query{Remote: netip.MustParseAddr("192.0.2.9"), Limit: 5000}, "limit: 5000 is not between 1 and 1000"},
	} {
		if _, err := s.Query(tc.q); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.q, err, tc.want)
		}
	}
}

func TestStoreLongFlowSpansDays(t *testing.T) {
	c := &clock{t0.Add(72 * time.Hour)}
	s := openTest(t, filepath.Join(t.TempDir(), "f.db"), c, 1<<30)
	defer s.Close()
	long := rec(t0, 1, "203.0.113.9:5000", "pl_a", 3)
	long.End = t0.Add(50 * time.Hour)
	short := rec(t0.Add(49*time.Hour), 2, "203.0.113.9:5001", "pl_a", 3)
	if err := s.Put([]Record{long, short}); err != nil {
		t.Fatal(err)
	}
	// A window on the third day only finds the long flow (indexed there
	// too) before the short one, each once.
	p, err := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.9"), Since: t0.Add(48 * time.Hour), Until: t0.Add(60 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 2 || p.Records[0].Key != long.Key || p.Records[1].Key != short.Key {
		t.Fatalf("got %+v", p.Records)
	}
	p, _ = s.Query(Query{Remote: netip.MustParseAddr("203.0.113.9"), Since: t0.Add(-time.Hour), Until: t0.Add(60 * time.Hour)})
	if len(p.Records) != 2 {
		t.Fatalf("whole window: %d records", len(p.Records))
	}
}

func TestStoreRetentionByAge(t *testing.T) {
	c := &clock{t0}
	s := openTest(t, filepath.Join(t.TempDir(), "f.db"), c, 1<<30)
	defer s.Close()
	var recs []Record
	for d := 0; d < 40; d++ {
		recs = append(recs, rec(t0.Add(time.Duration(d)*24*time.Hour), uint32(d), "203.0.113.7:22", "pl_a", 3))
	}
	open := rec(t0.Add(time.Hour), 99, "203.0.113.8:22", "pl_a", 3)
	open.Flags = FlagOpen
	if err := s.Put(append(recs, open)); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(39*24*time.Hour + time.Hour)
	if _, err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	p, err := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.7"), Since: t0.Add(-time.Hour), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Days 0..8 are older than 30 days and gone; 9..39 remain.
	if len(p.Records) != 31 || !p.Records[0].Start.Equal(t0.Add(9*24*time.Hour)) {
		t.Fatalf("after retention: %d records, first %v", len(p.Records), p.Records[0].Start)
	}
	if o, _ := s.OpenFlows(); len(o) != 0 {
		t.Errorf("open flow of a dropped day still listed: %+v", o)
	}
}

func TestStoreRetentionBySize(t *testing.T) {
	c := &clock{t0.Add(23 * time.Hour)}
	s := openTest(t, filepath.Join(t.TempDir(), "f.db"), c, 2<<20)
	defer s.Close()
	for b := 0; b < 20; b++ {
		var recs []Record
		for i := 0; i < 2000; i++ {
			n := b*2000 + i
			recs = append(recs, rec(t0.Add(time.Duration(n)*time.Millisecond), uint32(n), fmt.Sprintf("198.51.%d.%d:80", n/250%250, n%250), "pl_a", 3))
		}
		if err := s.Put(recs); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(); err != nil {
			t.Fatal(err)
		}
	}
	used, size := s.Usage()
	if used > 2<<20 {
		t.Fatalf("used %d bytes (file %d), limit %d", used, size, 2<<20)
	}
	// The newest records survive.
	last := 39999
	p, err := s.Query(Query{Remote: netip.MustParseAddr(fmt.Sprintf("198.51.%d.%d", last/250%250, last%250)), Since: t0, Until: t0.Add(time.Hour)})
	if err != nil || len(p.Records) == 0 {
		t.Fatalf("newest record gone: %v", err)
	}
	t.Logf("used %d of %d bytes after 40000 records", used, size)
}

func TestStoreOpenFlowsAndSlices(t *testing.T) {
	c := &clock{t0}
	path := filepath.Join(t.TempDir(), "f.db")
	s := openTest(t, path, c, 1<<30)
	r := rec(t0, 1, "203.0.113.7:22", "pl_a", 3)
	r.Flags = FlagOpen
	if err := s.Put([]Record{r}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSlices(map[int]SliceRef{3: {Name: "pl_a", SliceID: 103}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, c, 1<<30)
	defer s.Close()
	o, err := s.OpenFlows()
	if err != nil || len(o) != 1 || o[0].Key != r.Key {
		t.Fatalf("open flows after restart: %+v %v", o, err)
	}
	m, _ := s.Slices()
	if m[3].Name != "pl_a" || m[3].SliceID != 103 {
		t.Fatalf("slices: %+v", m)
	}
	r.Flags = 0
	r.BytesSent = 5000
	if err := s.Put([]Record{r}); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.OpenFlows(); len(o) != 0 {
		t.Fatalf("closed flow still open: %+v", o)
	}
	p, _ := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.7"), Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)})
	if len(p.Records) != 1 || p.Records[0].BytesSent != 5000 {
		t.Fatalf("replaced record: %+v", p.Records)
	}
}

func TestStoreCorruptFileMovedAside(t *testing.T) {
	c := &clock{t0}
	dir := t.TempDir()
	path := filepath.Join(dir, "f.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path, c, 1<<30)
	defer s.Close()
	if err := s.Put([]Record{rec(t0, 1, "203.0.113.7:22", "pl_a", 3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("%s.corrupt-%d", path, t0.Unix())); err != nil {
		t.Fatalf("damaged file not kept aside: %v", err)
	}
}

func TestStoreTornTailKeepsOlderRecords(t *testing.T) {
	// A crash in the middle of a commit: bbolt writes the new pages, then
	// a meta page. Emulate a torn last commit by damaging the newer meta
	// page: the store opens on the older one with the older records.
	c := &clock{t0}
	path := filepath.Join(t.TempDir(), "f.db")
	s := openTest(t, path, c, 1<<30)
	if err := s.Put([]Record{rec(t0, 1, "203.0.113.7:22", "pl_a", 3)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]Record{rec(t0.Add(time.Second), 2, "203.0.113.7:22", "pl_a", 3)}); err != nil {
		t.Fatal(err)
	}
	ps := s.db.Info().PageSize
	var last int
	_ = s.db.View(func(tx *bolt.Tx) error { last = int(tx.ID()); return nil })
	s.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The meta page of transaction N is page N%2.
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff", 64)), int64((last%2)*ps+16)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = openTest(t, path, c, 1<<30)
	defer s.Close()
	p, err := s.Query(Query{Remote: netip.MustParseAddr("203.0.113.7"), Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 1 || p.Records[0].Key != MakeKey(t0, 1) {
		t.Fatalf("after a torn last commit: %+v, want the first record only", p.Records)
	}
}
