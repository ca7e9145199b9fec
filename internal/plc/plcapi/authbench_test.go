package plcapi

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// BenchmarkAuthCheckPassword measures AuthCheck with password auth over
// HTTP, one client, production bcrypt cost (10), with the password cache
// and, in the same run, without it (every call runs bcrypt, as before the
// cache): calls/s beside uncached-calls/s. Issue 9.2's baseline: the
// original PLCAPI answered 520 calls/s; this one answered 13 without the
// cache.
func BenchmarkAuthCheckPassword(b *testing.B) {
	serve := func(cacheTTL time.Duration) (url string, auth map[string]any) {
		ctx := context.Background()
		db, err := store.Open(ctx, filepath.Join(b.TempDir(), "plc.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		s := service.New(db, service.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PasswordCacheTTL: cacheTTL})
		b.Cleanup(func() { s.Close() })
		if _, err := s.Init(ctx, itAdmin, itAdminPW); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(NewHandler(s, Options{}))
		b.Cleanup(srv.Close)
		return srv.URL + "/PLCAPI/", map[string]any{"AuthMethod": "password", "Username": itAdmin, "AuthString": itAdminPW}
	}
	rate := func(url string, body []byte, n int) float64 {
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := benchCall(url, body, false); err != nil {
				b.Fatal(err)
			}
		}
		return float64(n) / time.Since(start).Seconds()
	}
	uncachedURL, auth := serve(-1)
	cachedURL, _ := serve(0)
	body, err := xmlrpc.EncodeCall("AuthCheck", auth)
	if err != nil {
		b.Fatal(err)
	}
	if res, err := benchCall(cachedURL, body, true); err != nil || res != int64(1) {
		b.Fatalf("AuthCheck: %v %v", res, err)
	}
	b.ResetTimer()
	cached := rate(cachedURL, body, b.N)
	b.StopTimer()
	uncached := rate(uncachedURL, body, max(10, min(b.N, 50)))
	b.ReportMetric(cached, "calls/s")
	b.ReportMetric(uncached, "uncached-calls/s")
	b.Logf("AuthCheck, password auth, 1 client: %.0f calls/s with the cache, %.1f calls/s without (bcrypt cost 10); original PLCAPI: 520 (issue 9.2)", cached, uncached)
}
