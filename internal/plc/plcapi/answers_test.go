package plcapi

import (
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// TestAnswerMemo: the encoding of an answer is kept when the same records
// are encoded a second time, and found only for those very records (equal
// records elsewhere, or a shorter view, are not them).
func TestAnswerMemo(t *testing.T) {
	m := newAnswerMemo(2, 1<<20)
	recs := []core.Record{{"name": "a"}, {"name": "b"}}
	if m.lookup(recs) != nil {
		t.Fatal("found before any encoding")
	}
	m.encoded(recs, []byte("<a/>"))
	if m.lookup(recs) != nil {
		t.Fatal("kept after one encoding")
	}
	m.encoded(recs, []byte("<a/>"))
	if got := m.lookup(recs); string(got) != "<a/>" {
		t.Fatalf("after two encodings: %q", got)
	}
	same := []core.Record{{"name": "a"}, {"name": "b"}}
	if m.lookup(same) != nil || m.lookup(recs[:1]) != nil || m.lookup(nil) != nil {
		t.Fatal("found for other records")
	}
	// Bounded: entries and bytes.
	for i := 0; i < 3; i++ {
		r := []core.Record{{"i": i}}
		m.encoded(r, []byte("x"))
		m.encoded(r, []byte("x"))
	}
	if m.lru.Len() != 2 || m.lookup(recs) != nil {
		t.Fatalf("%d entries, oldest kept %v", m.lru.Len(), m.lookup(recs) != nil)
	}
	big := []core.Record{{}}
	m.encoded(big, make([]byte, 300<<10))
	m.encoded(big, make([]byte, 300<<10))
	if m.lookup(big) != nil {
		t.Fatal("an answer of more than a quarter of the bytes was kept")
	}
}
