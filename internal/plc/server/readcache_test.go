package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// TestReadCacheAcrossTransports: with the read cache on (the default), a
// write through REST is seen at once by PLCAPI reads, a write through
// PLCAPI by REST reads, and a write by another process on the store file
// by both (service-level cases: internal/plc/service/readcache_test.go).
func TestReadCacheAcrossTransports(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Init(ctx, Config{DataDir: dir}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m, _ := start(t, Config{DataDir: dir})
	rest, err := client.New(m.URL(), client.Options{Fingerprint: m.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rest.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	site, err := rest.Add(ctx, nil, core.Site, core.Record{"login_base": "rc", "name": "Name 0", "abbreviated_name": "RC"})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	auth := map[string]any{"AuthMethod": "password", "Username": "admin@example.org", "AuthString": "pw"}
	plcapi := func(method string, params ...any) any {
		t.Helper()
		body, err := xmlrpc.EncodeCall(method, append([]any{auth}, params...)...)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Post(m.URL()+"/PLCAPI/", "text/xml", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		v, err := xmlrpc.DecodeResponse(resp.Body, xmlrpc.DefaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return v
	}
	plcapiName := func() any {
		t.Helper()
		recs := plcapi("GetSites", []any{site}, []any{"name"}).([]any)
		return recs[0].(map[string]any)["name"]
	}
	restName := func() any {
		t.Helper()
		recs, err := rest.Get(ctx, nil, core.Site, &core.Filter{IsList: true, IDs: []int64{site}}, []string{"name"})
		if err != nil || len(recs) != 1 {
			t.Fatalf("REST get: %v %v", recs, err)
		}
		return recs[0]["name"]
	}
	for i := 0; i < 3; i++ { // cache hits from the second; PLCAPI answers its kept bytes from the third
		if plcapiName() != "Name 0" || restName() != "Name 0" {
			t.Fatal("initial name")
		}
	}
	if err := rest.Update(ctx, nil, core.Site, site, core.Record{"name": "Name 1"}); err != nil {
		t.Fatal(err)
	}
	if got := plcapiName(); got != "Name 1" {
		t.Fatalf("PLCAPI after a REST write: %v", got)
	}
	restName()
	if got := plcapi("UpdateSite", site, map[string]any{"name": "Name 2"}); got != int64(1) {
		t.Fatalf("UpdateSite: %v", got)
	}
	if got := restName(); got != "Name 2" {
		t.Fatalf("REST after a PLCAPI write: %v", got)
	}
	plcapiName()
	other, err := store.Open(ctx, filepath.Join(dir, "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE sites SET name = 'Name 3' WHERE site_id = ?", site)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if a, b := plcapiName(), restName(); a != "Name 3" || b != "Name 3" {
		t.Fatalf("after another process's write: PLCAPI %v, REST %v", a, b)
	}
}
