package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// passwordCache remembers recent successful password verifications so
// that a script calling PLCAPI with password auth pays bcrypt once, not on
// every call (bcrypt stays the storage hash; its cost is the point of it).
//
// An entry's key is HMAC-SHA256, under a random key made at process start
// and never stored, of (email, password, stored bcrypt hash): the cache
// holds no password nor anything checkable without that key; a changed
// password (a new stored hash) can never hit an old entry; entries expire
// after TTL and at most Size are kept (least recently used dropped first).
// Updates of a person's password or enabled flag and deletions also drop
// the person's entries at once. A hit still needs the person's live row
// (read on every call): deleted or disabled accounts never pass.
type passwordCache struct {
	off  bool // disabled (a negative TTL): every login runs bcrypt
	key  [32]byte
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
	seen *simplelru.LRU[[32]byte, cachedLogin]
}

type cachedLogin struct {
	personID int64
	expires  time.Time
}

// Defaults of the password cache.
const (
	DefaultPasswordCacheTTL  = 10 * time.Minute
	DefaultPasswordCacheSize = 10_000
)

func newPasswordCache(ttl time.Duration, size int, now func() time.Time) *passwordCache {
	off := ttl < 0
	if ttl <= 0 {
		ttl = DefaultPasswordCacheTTL
	}
	if size <= 0 {
		size = DefaultPasswordCacheSize
	}
	c := &passwordCache{off: off, ttl: ttl, now: now}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	c.seen, _ = simplelru.NewLRU[[32]byte, cachedLogin](size, nil)
	return c
}

func (c *passwordCache) mac(email, password, hash string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	for _, s := range []string{email, password, hash} {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:]) // length-prefixed: no two triples share an input
		m.Write([]byte(s))
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// verified reports whether (email, password) was verified against hash
// for personID within the TTL.
func (c *passwordCache) verified(personID int64, email, password, hash string) bool {
	if c.off {
		return false
	}
	k := c.mac(email, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.seen.Get(k)
	if !ok {
		return false
	}
	if e.personID != personID || !c.now().Before(e.expires) {
		c.seen.Remove(k)
		return false
	}
	return true
}

// remember records a successful bcrypt verification.
func (c *passwordCache) remember(personID int64, email, password, hash string) {
	if c.off {
		return
	}
	k := c.mac(email, password, hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen.Add(k, cachedLogin{personID: personID, expires: c.now().Add(c.ttl)})
}

// forget drops every entry of a person (password changed, account
// disabled or deleted).
func (c *passwordCache) forget(personID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.seen.Keys() {
		if e, ok := c.seen.Peek(k); ok && e.personID == personID {
			c.seen.Remove(k)
		}
	}
}

func (c *passwordCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen.Len()
}
