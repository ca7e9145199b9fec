package plcapi

import (
	"sync"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/planetlab/pl/internal/core"
)

// answerMemo keeps the encoded responses of Get answers that the registry
// hands out again: PLC's read cache returns the very same []core.Record
// (records that nobody modifies, core.Registry.Get) for a repeated read
// until a write, so its XML is the same bytes, and encoding a thousand
// nodes costs more than everything else of the call.
//
// An answer is known by the address of its first record and its length.
// An entry holds the records it encoded, so that address cannot be reused
// by another answer while the entry exists; a changed registry answers
// with new records, never found here. Answers are remembered only when
// seen a second time (a fresh answer of the store is never seen again),
// and the entries are bounded in number and bytes.
type answerMemo struct {
	maxBytes int64

	mu    sync.Mutex
	lru   *simplelru.LRU[*core.Record, *memoEntry]
	seen  *simplelru.LRU[answerID, struct{}] // addresses seen once (not held)
	bytes int64
}

type answerID struct {
	addr uintptr
	n    int
}

type memoEntry struct {
	recs []core.Record // held: the key's address stays theirs
	body []byte
}

func newAnswerMemo(size int, maxBytes int64) *answerMemo {
	m := &answerMemo{maxBytes: maxBytes}
	m.lru, _ = simplelru.NewLRU[*core.Record, *memoEntry](size, func(_ *core.Record, e *memoEntry) { m.bytes -= int64(len(e.body)) })
	m.seen, _ = simplelru.NewLRU[answerID, struct{}](4*size, nil)
	return m
}

// lookup returns the encoded response of recs if it is kept.
func (m *answerMemo) lookup(recs []core.Record) []byte {
	if len(recs) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lru.Get(&recs[0])
	if !ok || len(e.recs) != len(recs) {
		return nil
	}
	return e.body
}

// encoded notes that body is the encoded response of recs; the second time
// the same records are encoded, a copy of body is kept.
func (m *answerMemo) encoded(recs []core.Record, body []byte) {
	if len(recs) == 0 || int64(len(body)) > m.maxBytes/4 {
		return
	}
	id := answerID{uintptr(unsafe.Pointer(&recs[0])), len(recs)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen.Get(id); !ok {
		m.seen.Add(id, struct{}{})
		return
	}
	m.seen.Remove(id)
	m.lru.Remove(&recs[0])
	m.lru.Add(&recs[0], &memoEntry{recs: recs, body: append([]byte(nil), body...)})
	m.bytes += int64(len(body))
	for m.bytes > m.maxBytes {
		m.lru.RemoveOldest()
	}
}
