package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

type remoteAddrKey struct{}

// WithRemoteAddr tells the service where a request comes from (an IP
// address), for the login backoff. PLC's HTTP server sets it for every
// request, whatever the transport.
func WithRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteAddrKey{}, addr)
}

// RemoteAddr returns the address WithRemoteAddr recorded ("" if none).
func RemoteAddr(ctx context.Context) string {
	s, _ := ctx.Value(remoteAddrKey{}).(string)
	return s
}

// LoginPolicy is the backoff of failed logins (passwords, node keys, node
// HMACs and join secrets); docs/plc.md "Failed logins" states it for users.
//
// Failures are counted per (account, source) and per source, never per
// account alone: failures from other sources never delay the right
// password from a source that has not been failing, so nobody can lock an
// account (the admin's included) out. Beyond PairFree failures of one
// account from one source, or SourceFree failures of any accounts from one
// source, each further failure doubles a wait (Base, 2 Base, ... up to
// Max) during which that pair, or that whole source, is refused at once
// (RateLimited, with the time left) without any password check. A pair or
// source that has not failed for Forget starts afresh; a success clears
// its pair. At most MaxEntries pairs and sources are remembered (the least
// recently failing are forgotten first); IPv6 sources count per /64.
type LoginPolicy struct {
	PairFree   int           // default 5
	SourceFree int           // default 30
	Base       time.Duration // default 1 s
	Max        time.Duration // default 15 min
	Forget     time.Duration // default 1 h
	MaxEntries int           // default 100,000
}

func (p LoginPolicy) withDefaults() LoginPolicy {
	if p.PairFree <= 0 {
		p.PairFree = 5
	}
	if p.SourceFree <= 0 {
		p.SourceFree = 30
	}
	if p.Base <= 0 {
		p.Base = time.Second
	}
	if p.Max <= 0 {
		p.Max = 15 * time.Minute
	}
	if p.Forget <= 0 {
		p.Forget = time.Hour
	}
	if p.Forget < p.Max {
		p.Forget = p.Max
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = 100_000
	}
	return p
}

// limiter applies a LoginPolicy. It is the only rate limiter of the
// service: every credential check runs through guard.
type limiter struct {
	pol LoginPolicy
	now func() time.Time

	mu    sync.Mutex
	state *simplelru.LRU[string, *backoff]
	// db, when set (PostgreSQL), holds the records instead of state, so
	// that every replica sees every failure (store/backoff.go).
	db  *store.DB
	log *slog.Logger
	// ns keeps this limiter's records apart from another's in db (the
	// sign-up limiter's from the login limiter's).
	ns string
}

// backoff is the failure record of one pair or source.
type backoff struct {
	fails int
	last  time.Time // last failure
	until time.Time // refused before this
}

func newLimiter(pol LoginPolicy, now func() time.Time) *limiter {
	pol = pol.withDefaults()
	lru, err := simplelru.NewLRU[string, *backoff](pol.MaxEntries, nil)
	if err != nil {
		panic(err) // only for a size <= 0, which withDefaults excludes
	}
	return &limiter{pol: pol, now: now, state: lru}
}

// sourceKey groups a source address: IPv6 per /64 (one host's share of a
// network), IPv4 per address.
func sourceKey(source string) string {
	a, err := netip.ParseAddr(source)
	if err != nil {
		return source
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func pairKey(account, source string) string                       { return "p\x00" + account + "\x00" + source }
func sourceOnlyKey(source string) string                          { return "s\x00" + source }
func (l *limiter) entries() int                                   { l.mu.Lock(); defer l.mu.Unlock(); return l.state.Len() }
func (b *backoff) stale(now time.Time, forget time.Duration) bool { return now.Sub(b.last) >= forget }

// wait returns how long account must wait before trying from source (0 =
// it may try now), and whether the pair has a failure record.
func (l *limiter) wait(ctx context.Context, account, source string) (time.Duration, bool) {
	keys := []string{pairKey(account, source)}
	if source != "" {
		keys = append(keys, sourceOnlyKey(source))
	}
	if l.db != nil {
		return l.dbWait(ctx, keys)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var until time.Time
	pair := false
	for i, k := range keys {
		b, ok := l.state.Peek(k)
		if !ok {
			continue
		}
		if b.stale(now, l.pol.Forget) {
			l.state.Remove(k)
			continue
		}
		pair = pair || i == 0
		if b.until.After(until) {
			until = b.until
		}
	}
	return until.Sub(now), pair
}

// fail records a failed check of account from source.
func (l *limiter) fail(ctx context.Context, account, source string) {
	now := l.now()
	if l.db != nil {
		l.dbCount(ctx, pairKey(account, source), l.pol.PairFree, now)
		if source != "" {
			l.dbCount(ctx, sourceOnlyKey(source), l.pol.SourceFree, now)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count(pairKey(account, source), l.pol.PairFree, now)
	if source != "" {
		l.count(sourceOnlyKey(source), l.pol.SourceFree, now)
	}
}

func (l *limiter) count(key string, free int, now time.Time) {
	b, ok := l.state.Get(key)
	if !ok || b.stale(now, l.pol.Forget) {
		b = &backoff{}
	}
	nb := l.next(*b, free, now)
	l.state.Add(key, &nb)
}

// next is the record after one more failure.
func (l *limiter) next(b backoff, free int, now time.Time) backoff {
	b.fails++
	b.last = now
	if extra := b.fails - free; extra > 0 {
		d := l.pol.Max
		if extra <= 30 && l.pol.Base<<(extra-1) < l.pol.Max {
			d = l.pol.Base << (extra - 1)
		}
		b.until = now.Add(d)
	}
	return b
}

// succeed clears the pair of a successful check (not its source: a
// sprayer must not reset its own count with an account of its own).
func (l *limiter) succeed(ctx context.Context, account, source string) {
	if l.db != nil {
		err := l.db.UpdateBackoff(ctx, l.dbKey(pairKey(account, source)), l.now().Add(-l.pol.Forget).UnixMilli(),
			func(store.Backoff) store.Backoff { return store.Backoff{} })
		if err != nil {
			l.log.Warn("login backoff: clearing a pair", "err", err)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state.Remove(pairKey(account, source))
}

// dbWait is wait over the store's records (replicas share them). A store
// failure lets the check go on (it needs the store too, and fails there
// with its own error).
func (l *limiter) dbWait(ctx context.Context, keys []string) (time.Duration, bool) {
	pair := l.dbKey(keys[0])
	dk := []string{pair}
	for _, k := range keys[1:] {
		dk = append(dk, l.dbKey(k))
	}
	rows, err := l.db.Backoffs(ctx, dk...)
	if err != nil {
		l.log.Warn("login backoff: reading", "err", err)
		return 0, false
	}
	now := l.now()
	var until time.Time
	hasPair := false
	for _, r := range rows {
		b := fromRow(r)
		if b.stale(now, l.pol.Forget) {
			continue
		}
		hasPair = hasPair || r.Key == pair
		if b.until.After(until) {
			until = b.until
		}
	}
	return until.Sub(now), hasPair
}

func (l *limiter) dbCount(ctx context.Context, key string, free int, now time.Time) {
	err := l.db.UpdateBackoff(ctx, l.dbKey(key), now.Add(-l.pol.Forget).UnixMilli(), func(r store.Backoff) store.Backoff {
		b := fromRow(r)
		if r.Fails == 0 || b.stale(now, l.pol.Forget) {
			b = backoff{}
		}
		b = l.next(b, free, now)
		return store.Backoff{Fails: int64(b.fails), Last: b.last.UnixMilli(), Until: b.until.UnixMilli()}
	})
	if err != nil {
		l.log.Warn("login backoff: recording a failure", "err", err)
	}
}

// dbKey is the store's key of a limiter key: the limiter's namespace, the
// key's kind ('p' pair, 's' source) and a SHA-256 of both (keys hold NULs
// and untrusted names of any length).
func (l *limiter) dbKey(k string) string {
	h := sha256.Sum256([]byte(l.ns + "\x00" + k))
	return l.ns + k[:1] + ":" + hex.EncodeToString(h[:])
}

func fromRow(r store.Backoff) backoff {
	return backoff{fails: int(r.Fails), last: time.UnixMilli(r.Last), until: time.UnixMilli(r.Until)}
}

// guard runs check, a credential check of account from the request's
// source, under the policy: refused at once with RateLimited while the
// pair or the source must wait; a check that reports bad credentials
// counts as a failure, a passing one clears the pair. check's error is
// returned as it is.
func (l *limiter) guard(ctx context.Context, account string, check func() (bad bool, err error)) error {
	source := RemoteAddr(ctx)
	if source != "" {
		source = sourceKey(source)
	}
	w, pair := l.wait(ctx, account, source)
	if w > 0 {
		return rateLimited(account, RemoteAddr(ctx), w)
	}
	bad, err := check()
	switch {
	case bad:
		l.fail(context.WithoutCancel(ctx), account, source)
	case err == nil && pair:
		l.succeed(context.WithoutCancel(ctx), account, source)
	}
	return err
}

// rateLimited is the error of a refused login: transports answer it with
// HTTP 429 and Retry-After, or PLCAPI fault 103.
func rateLimited(account, source string, wait time.Duration) error {
	secs := (wait + time.Second - 1) / time.Second
	from := ""
	if source != "" {
		from = " from " + source
	}
	what := "failed logins for " + account
	if account == signupAccount {
		what = "sign-ups"
	}
	return &core.Error{
		Code:       core.RateLimited,
		Message:    fmt.Sprintf("too many %s%s; try again in %d s", what, from, secs),
		RetryAfter: secs * time.Second,
	}
}
