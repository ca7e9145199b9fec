package service

import (
	"math"
	"strconv"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/planetlab/pl/internal/core"
)

// readCache keeps the answers of Get (every Get* of PLCAPI and every list
// or show of REST) so that repeated reads skip the store, and never serves
// one that a write could have changed.
//
// An entry's key is everything that decides the answer besides the store:
// the caller (kind, person, node, roles, sites: what decides visibility and
// hidden fields), the class, the canonical filter and the fields. Its
// value is tagged with the store's generation (store.DB.Generation): the
// generation is read before the read transaction and again after it, and
// the answer is kept only if both are equal and usable (no commit started
// or ended in between, none was in progress); an entry is served only while
// the generation is still its own. The caller's roles and sites as the
// read saw them are part of the state at that generation, so a changed
// role or a disabled account (both writes) end the entries too.
//
// The generation moves with every commit of this process and, for SQLite,
// with commits of any other process on the same file; with PostgreSQL it is
// never usable (other PLC processes may write the database unseen), so the
// cache stays empty there.
//
// Time also changes answers: slices (and their tags and leases) disappear
// when they expire, without a write. Such an entry also records the next
// expiry after its read, and is served only before it.
//
// Entries are bounded in number and in approximate bytes, least recently
// used dropped first; when the generation moves, everything older is
// dropped at once. Cached records are shared between callers: Get's
// callers must not modify them (core.Registry.Get says so).
type readCache struct {
	maxBytes int64

	mu    sync.Mutex
	lru   *simplelru.LRU[string, *cacheEntry]
	bytes int64
	gen   uint64 // the newest generation seen; older entries are gone
	hits  int64
	miss  int64

	// afterRead, when set (tests), runs after a miss's read transaction
	// and before the generation is read again.
	afterRead func()
}

type cacheEntry struct {
	gen   uint64
	recs  []core.Record
	now   int64 // the read's clock (seconds)
	until int64 // > 0: served only before this time (the next slice expiry)
	size  int64
}

// Defaults of the read cache.
const (
	DefaultReadCacheSize  = 1024
	DefaultReadCacheBytes = 64 << 20
)

func newReadCache(size int, maxBytes int64) *readCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultReadCacheSize
	}
	if maxBytes <= 0 {
		maxBytes = DefaultReadCacheBytes
	}
	c := &readCache{maxBytes: maxBytes}
	c.lru, _ = simplelru.NewLRU[string, *cacheEntry](size, func(_ string, e *cacheEntry) { c.bytes -= e.size })
	return c
}

// advance drops every entry when the generation moved past the cache's;
// it reports false when gen is older than what the cache has seen.
func (c *readCache) advance(gen uint64) bool {
	switch {
	case gen > c.gen:
		c.lru.Purge()
		c.bytes, c.gen = 0, gen
	case gen < c.gen:
		return false
	}
	return true
}

// get returns the entry for key if it is of generation gen and still true
// at time now.
func (c *readCache) get(key string, gen uint64, now int64) ([]core.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.advance(gen) {
		c.miss++
		return nil, false
	}
	e, ok := c.lru.Get(key)
	if !ok || e.gen != gen {
		c.miss++
		return nil, false
	}
	if now < e.now || e.until > 0 && now >= e.until {
		c.lru.Remove(key)
		c.miss++
		return nil, false
	}
	c.hits++
	return e.recs, true
}

// put keeps an answer read at generation gen.
func (c *readCache) put(key string, e *cacheEntry) {
	e.size = int64(len(key)) + recordsSize(e.recs)
	if e.size > c.maxBytes/4 {
		return // one answer may not crowd out everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.advance(e.gen) {
		return
	}
	c.lru.Remove(key) // a replaced entry's bytes are counted off by the eviction callback
	c.lru.Add(key, e)
	c.bytes += e.size
	for c.bytes > c.maxBytes {
		c.lru.RemoveOldest()
	}
}

// recordsSize estimates the memory of records: map and slice overheads and
// the payload of strings and lists.
func recordsSize(recs []core.Record) int64 {
	n := int64(24 + 8*len(recs))
	for _, r := range recs {
		n += 48
		for k, v := range r {
			n += 32 + int64(len(k)) + valueSize(v)
		}
	}
	return n
}

func valueSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return 16 + int64(len(v))
	case []int64:
		return 24 + 8*int64(len(v))
	case []string:
		n := int64(24)
		for _, s := range v {
			n += 16 + int64(len(s))
		}
		return n
	case []any:
		n := int64(24)
		for _, e := range v {
			n += 16 + valueSize(e)
		}
		return n
	case map[string]any:
		n := int64(48)
		for k, e := range v {
			n += 32 + int64(len(k)) + valueSize(e)
		}
		return n
	}
	return 16
}

// cacheKey is the canonical text of what decides a Get's answer besides
// the store; ok is false when the filter holds a value this encoding does
// not know (such a Get is not cached).
func cacheKey(c *core.Caller, class core.Class, f *core.Filter, fields []string) (string, bool) {
	b := make([]byte, 0, 128)
	b = appendStr(b, string(class))
	if c == nil {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, int64(c.Kind), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, c.PersonID, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, c.NodeID, 10)
		b = appendStrs(b, c.Roles)
		b = appendInts(b, c.SiteIDs)
	}
	if fields == nil {
		b = append(b, '*')
	} else {
		b = appendStrs(b, fields)
	}
	if f == nil {
		return string(append(b, 'N')), true
	}
	if f.IsList {
		b = append(b, 'L')
		b = appendInts(b, f.IDs)
		b = appendStrs(b, f.Names)
	}
	b = append(b, 'T')
	b = strconv.AppendInt(b, int64(len(f.Terms)), 10)
	for _, t := range f.Terms {
		b = appendStr(b, t.Field)
		b = appendStr(b, string(t.Op))
		b = strconv.AppendBool(b, t.Not)
		var ok bool
		if b, ok = appendValue(b, t.Value); !ok {
			return "", false
		}
	}
	b = strconv.AppendBool(b, f.Or)
	b = append(b, 'S')
	b = strconv.AppendInt(b, int64(len(f.Sort)), 10)
	for _, s := range f.Sort {
		b = appendStr(b, s.Field)
		b = strconv.AppendBool(b, s.Desc)
	}
	b = append(b, 'O')
	b = strconv.AppendInt(b, int64(f.Offset), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(f.Limit), 10)
	return string(b), true
}

// appendStr writes a length-prefixed string: no two sequences of strings
// share an encoding.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(len(ss)), 10)
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendInts(b []byte, ns []int64) []byte {
	b = append(b, '(')
	b = strconv.AppendInt(b, int64(len(ns)), 10)
	for _, n := range ns {
		b = append(b, ',')
		b = strconv.AppendInt(b, n, 10)
	}
	return b
}

// appendValue writes a filter value with its type: 1 and 1.0 and "1" are
// different filters.
func appendValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, 'z'), true
	case bool:
		if v {
			return append(b, 't'), true
		}
		return append(b, 'f'), true
	case int64:
		b = append(b, 'i')
		return strconv.AppendInt(b, v, 10), true
	case float64:
		b = append(b, 'd')
		return strconv.AppendUint(b, math.Float64bits(v), 16), true
	case string:
		return appendStr(b, v), true
	case []any:
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		for _, e := range v {
			var ok bool
			if b, ok = appendValue(b, e); !ok {
				return b, false
			}
		}
		return b, true
	}
	return b, false
}
