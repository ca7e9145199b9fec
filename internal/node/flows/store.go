package flows

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
)

// The store is one bbolt file (go.etcd.io/bbolt, the B+tree store of etcd:
// one file, copy-on-write pages, every transaction atomic and durable,
// readers never blocked by the writer). Layout:
//
//	days/<YYYY-MM-DD>/r   Key -> encoded Record (the day of the flow's start)
//	days/<YYYY-MM-DD>/x   remote address (16 bytes) + Key -> nothing:
//	                      the address index; a flow is indexed in every day it spans
//	open                  Key -> day of the record: flows alive at their last read
//	slices                xid (4 bytes) -> the slice that last held it (JSON)
//
// Retention drops whole days (old ones first), so it costs one bucket
// delete; the size limit drops the oldest days, then the oldest half of
// the only day left.
var (
	bDays   = []byte("days")
	bOpen   = []byte("open")
	bSlices = []byte("slices")
	bRecs   = []byte("r")
	bIdx    = []byte("x")
)

const dayLayout = "2006-01-02"

// Defaults of StoreConfig.
const (
	DefaultMaxAge    = 30 * 24 * time.Hour
	DefaultDiskShare = 0.05 // of the file system holding the store
	minMaxBytes      = 1 << 20
)

// StoreConfig configures a Store.
type StoreConfig struct {
	Path string // the bbolt file; created 0600 with its directory
	// MaxAge drops records of flows started earlier; DefaultMaxAge.
	MaxAge time.Duration
	// MaxBytes bounds the space used in the file; 0: DefaultDiskShare of
	// the file system's size, computed at open.
	MaxBytes int64
	Now      func() time.Time
	Logger   *slog.Logger
}

// Store is the node's flow log. Safe for concurrent use.
type Store struct {
	cfg StoreConfig
	db  *bolt.DB
	log *slog.Logger
}

// OpenStore opens (or creates) the store. A file bbolt cannot open (a
// damaged meta page pair, not a bbolt file) is moved aside as
// <path>.corrupt-<unix time> and a new one is started; the old one is kept
// for inspection and logged. A transaction cut short by a crash or a power
// loss is not damage: bbolt falls back to the previous meta page, so only
// the last second's batch can be lost.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.Path == "" {
		return nil, core.FieldErrorf("path", "flow store path is required")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxAge < time.Hour {
		return nil, core.FieldErrorf("max_age", "%s is below one hour", cfg.MaxAge)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Dir(cfg.Path), &st); err != nil {
			return nil, fmt.Errorf("flow store: size of the file system: %w", err)
		}
		cfg.MaxBytes = int64(float64(st.Blocks) * float64(st.Bsize) * DefaultDiskShare)
	}
	if cfg.MaxBytes < minMaxBytes {
		cfg.MaxBytes = minMaxBytes
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With("subsystem", "flows")}
	db, err := s.open()
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

func (s *Store) open() (*bolt.DB, error) {
	opts := &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType}
	initDB := func(db *bolt.DB, err error) (*bolt.DB, error) {
		if err != nil {
			return nil, err
		}
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bDays, bOpen, bSlices} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	db, err := initDB(bolt.Open(s.cfg.Path, 0o600, opts))
	if err == nil {
		return db, nil
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("flow store %s is in use by another process", s.cfg.Path)
	}
	aside := fmt.Sprintf("%s.corrupt-%d", s.cfg.Path, s.cfg.Now().Unix())
	s.log.Error("flow store unreadable; moved aside, starting a new one", "path", s.cfg.Path, "aside", aside, "err", err)
	if rerr := os.Rename(s.cfg.Path, aside); rerr != nil {
		return nil, fmt.Errorf("flow store %s: %w (and moving it aside: %v)", s.cfg.Path, err, rerr)
	}
	return initDB(bolt.Open(s.cfg.Path, 0o600, opts))
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func dayOf(t time.Time) []byte { return []byte(t.UTC().Format(dayLayout)) }

func idxKey(a netip.Addr, k Key) []byte {
	a16 := a.As16()
	return append(a16[:], k[:]...)
}

// Put writes records in one transaction; a record with the key of one
// already stored replaces it (an open flow read again, then closed).
func (s *Store) Put(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		days, open := tx.Bucket(bDays), tx.Bucket(bOpen)
		for _, r := range recs {
			day := dayOf(r.Key.Time())
			db, err := dayBucket(days, day)
			if err != nil {
				return err
			}
			// Keys mostly grow (start times): full pages, not the default
			// half-full splits, halve the file.
			rb := db.Bucket(bRecs)
			rb.FillPercent = 0.95
			// bbolt keeps keys and values until the commit: one buffer each.
			if err := rb.Put(r.Key[:], r.encode(nil)); err != nil {
				return err
			}
			if r.Remote.Addr().IsValid() {
				// Index the flow in each day it spans (at most MaxAge of them).
				first := r.Key.Time().Truncate(24 * time.Hour)
				end := r.End
				if lim := first.Add(s.cfg.MaxAge + 24*time.Hour); end.After(lim) {
					end = lim
				}
				for d := first; !d.After(end); d = d.Add(24 * time.Hour) {
					xb, err := dayBucket(days, dayOf(d))
					if err != nil {
						return err
					}
					if err := xb.Bucket(bIdx).Put(idxKey(r.Remote.Addr(), r.Key), nil); err != nil {
						return err
					}
				}
			}
			if r.Open() {
				err = open.Put(r.Key[:], day) // day is fresh per record
			} else {
				err = open.Delete(r.Key[:])
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func dayBucket(days *bolt.Bucket, day []byte) (*bolt.Bucket, error) {
	b, err := days.CreateBucketIfNotExists(day)
	if err != nil {
		return nil, err
	}
	if _, err := b.CreateBucketIfNotExists(bRecs); err != nil {
		return nil, err
	}
	if _, err := b.CreateBucketIfNotExists(bIdx); err != nil {
		return nil, err
	}
	return b, nil
}

// OpenFlows returns the records of flows alive at their last read (the
// recorder reconciles them with the kernel's table at start).
func (s *Store) OpenFlows() ([]Record, error) {
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		days := tx.Bucket(bDays)
		return tx.Bucket(bOpen).ForEach(func(k, day []byte) error {
			db := days.Bucket(day)
			if db == nil || len(k) != len(Key{}) {
				return nil
			}
			v := db.Bucket(bRecs).Get(k)
			if v == nil {
				return nil
			}
			r, err := decodeRecord(v)
			if err != nil {
				s.log.Warn("skipping damaged open flow record", "key", fmt.Sprintf("%x", k), "err", err)
				return nil
			}
			r.Key = Key(k)
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Usage returns the bytes in use in the file and the file's size.
func (s *Store) Usage() (used, size int64) {
	// A read transaction's end refreshes the freelist figures.
	_ = s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	return size - free, size
}

// Prune applies retention: days older than MaxAge go, then the oldest
// records while the space used exceeds MaxBytes. It returns the number of
// days (or half days) dropped.
func (s *Store) Prune() (int, error) {
	cut := dayOf(s.cfg.Now().Add(-s.cfg.MaxAge))
	dropped := 0
	for {
		var victim []byte
		var ndays int
		used, _ := s.Usage()
		over := used > s.cfg.MaxBytes
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bDays).Cursor()
			k, _ := c.First()
			if k != nil && (bytes.Compare(k, cut) < 0 || over) {
				victim = append([]byte(nil), k...)
			}
			for ; k != nil; k, _ = c.Next() {
				ndays++
			}
			return nil
		})
		if err != nil || victim == nil {
			return dropped, err
		}
		if bytes.Compare(victim, cut) >= 0 && ndays == 1 {
			// Over the size limit with one day left: drop its older half.
			n, err := s.dropOldestHalf(victim)
			if err != nil || n == 0 {
				return dropped, err
			}
			s.log.Warn("flow store over its size limit: dropped the oldest records of the day", "day", string(victim), "records", n, "max_bytes", s.cfg.MaxBytes)
			dropped++
			continue
		}
		err = s.db.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bDays).DeleteBucket(victim); err != nil {
				return err
			}
			open := tx.Bucket(bOpen)
			c := open.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if bytes.Equal(v, victim) {
					if err := c.Delete(); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return dropped, err
		}
		s.log.Info("flow store: dropped a day of records", "day", string(victim), "over_size", over)
		dropped++
	}
}

func (s *Store) dropOldestHalf(day []byte) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		db := tx.Bucket(bDays).Bucket(day)
		recs, idx, open := db.Bucket(bRecs), db.Bucket(bIdx), tx.Bucket(bOpen)
		total := recs.Stats().KeyN
		c := recs.Cursor()
		for k, v := c.First(); k != nil && n < (total+1)/2; k, v = c.First() {
			if r, err := decodeRecord(v); err == nil && r.Remote.Addr().IsValid() {
				if err := idx.Delete(idxKey(r.Remote.Addr(), Key(k))); err != nil {
					return err
				}
			}
			if err := open.Delete(k); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// SliceRef is the slice that holds (or held) an xid on this node.
type SliceRef struct {
	Name    string    `json:"name"`
	SliceID int64     `json:"slice_id"`
	Since   time.Time `json:"since"`
}

// SetSlices records which slice holds each xid now. An xid keeps its
// last holder after the sliver is gone, so late records of its flows stay
// attributed.
func (s *Store) SetSlices(m map[int]SliceRef) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bSlices)
		for xid, ref := range m {
			k := binary.BigEndian.AppendUint32(nil, uint32(xid))
			if old := b.Get(k); old != nil {
				var o SliceRef
				if json.Unmarshal(old, &o) == nil && o.Name == ref.Name && o.SliceID == ref.SliceID {
					continue
				}
			}
			if ref.Since.IsZero() {
				ref.Since = s.cfg.Now().UTC()
			}
			v, err := json.Marshal(ref)
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Slices returns the persisted xid -> slice map.
func (s *Store) Slices() (map[int]SliceRef, error) {
	out := map[int]SliceRef{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSlices).ForEach(func(k, v []byte) error {
			var r SliceRef
			if len(k) == 4 && json.Unmarshal(v, &r) == nil {
				out[int(binary.BigEndian.Uint32(k))] = r
			}
			return nil
		})
	})
	return out, err
}

// Query limits.
const (
	DefaultLimit = core.FlowLimitDefault
	MaxLimit     = core.FlowLimitMax
	// MaxScan bounds the index entries one query examines; a query that
	// reaches it answers with what it found and a cursor to go on.
	MaxScan = 200_000
	// MaxWindow is the longest time window a query may ask for.
	MaxWindow = core.FlowWindowMax
)

// Query selects flows with one remote address.
type Query struct {
	Remote netip.Addr
	Port   uint16 // remote port; 0 = any
	Proto  uint8  // 0 = any
	Since  time.Time
	Until  time.Time
	Limit  int // DefaultLimit when 0; at most MaxLimit
	After  Key // resume after this key (Page.Next); zero = from the start
}

// Validate checks a query and fills its defaults.
func (q *Query) Validate(now time.Time) error {
	if !q.Remote.IsValid() {
		return core.FieldErrorf("addr", "is required")
	}
	q.Remote = q.Remote.Unmap()
	if q.Until.IsZero() {
		q.Until = now
	}
	if q.Since.IsZero() {
		q.Since = q.Until.Add(-24 * time.Hour)
	}
	if !q.Since.Before(q.Until) {
		return core.FieldErrorf("since", "%s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	if q.Until.Sub(q.Since) > MaxWindow {
		return core.FieldErrorf("since", "a window of %s is longer than %d days", q.Until.Sub(q.Since).Round(time.Hour), int(MaxWindow.Hours()/24))
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return core.FieldErrorf("limit", "%d is not between 1 and %d", q.Limit, MaxLimit)
	}
	return nil
}

// Page is one page of answers; Next, when set, is the cursor (Query.After)
// of the following page.
type Page struct {
	Records []Record `json:"records"`
	Next    string   `json:"next,omitempty"`
}

// Query answers flows to or from q.Remote that overlap [Since, Until],
// ordered by start time.
func (s *Store) Query(q Query) (Page, error) {
	if err := q.Validate(s.cfg.Now()); err != nil {
		return Page{}, err
	}
	var page Page
	scanned := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		days := tx.Bucket(bDays)
		a16 := q.Remote.As16()
		prefix := a16[:]
		firstDay := dayOf(q.Since)
		lastDay := dayOf(q.Until)
		dc := days.Cursor()
		for day, _ := dc.Seek(firstDay); day != nil && bytes.Compare(day, lastDay) <= 0; day, _ = dc.Next() {
			db := days.Bucket(day)
			if db == nil {
				continue
			}
			recs, idx := db.Bucket(bRecs), db.Bucket(bIdx)
			if recs == nil || idx == nil {
				continue
			}
			c := idx.Cursor()
			seek := prefix
			if q.After != (Key{}) {
				seek = append(append([]byte(nil), prefix...), q.After[:]...)
			}
			for k, _ := c.Seek(seek); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				key := Key(k[16:])
				if q.After != (Key{}) && bytes.Compare(key[:], q.After[:]) <= 0 {
					continue
				}
				kd := dayOf(key.Time())
				// A flow that spans days is indexed in each; it is taken
				// from the first day of the scan that has it (the first
				// scanned day, or its start day), so keys come in order.
				if !bytes.Equal(day, firstDay) && bytes.Compare(kd, day) < 0 {
					continue
				}
				scanned++
				if scanned > MaxScan {
					if len(page.Records) > 0 {
						page.Next = page.Records[len(page.Records)-1].Key.String()
					} else {
						page.Next = key.String()
					}
					return errStop
				}
				if key.Time().After(q.Until) {
					continue
				}
				rb := recs
				if !bytes.Equal(kd, day) {
					other := days.Bucket(kd)
					if other == nil {
						continue
					}
					rb = other.Bucket(bRecs)
				}
				v := rb.Get(key[:])
				if v == nil {
					continue
				}
				r, err := decodeRecord(v)
				if err != nil {
					s.log.Warn("skipping damaged flow record", "key", key.String(), "err", err)
					continue
				}
				r.Key = key
				if r.End.Before(q.Since) || (q.Port != 0 && r.Remote.Port() != q.Port) || (q.Proto != 0 && r.Proto != q.Proto) {
					continue
				}
				page.Records = append(page.Records, r)
				if len(page.Records) > q.Limit {
					page.Records = page.Records[:q.Limit]
					page.Next = page.Records[q.Limit-1].Key.String()
					return errStop
				}
			}
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	sort.SliceStable(page.Records, func(i, j int) bool {
		return bytes.Compare(page.Records[i].Key[:], page.Records[j].Key[:]) < 0
	})
	return page, err
}

var errStop = errors.New("stop")
