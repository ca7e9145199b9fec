package plcapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// benchPlanet fills the real service with 1,000 nodes in 20 sites, 100
// slices of 50 nodes each (about 5 slivers per node), 40 persons with keys
// as slice members and a few slice tags.
func benchPlanet(b *testing.B) (reg core.Registry, url string, userSession, nodeSession string) {
	s, admin := realService(b)
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	rng := mrand.New(mrand.NewSource(1))
	var nodes []int64
	var pis []int64
	for si := 0; si < 20; si++ {
		base := fmt.Sprintf("s%02d", si)
		site, err := s.Add(ctx, admin, core.Site, core.Record{"login_base": base, "name": "Site " + base, "abbreviated_name": base, "max_slices": int64(100)})
		must(err)
		for ni := 0; ni < 50; ni++ {
			id, err := s.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": fmt.Sprintf("n%02d.%s.example.org", ni, base)})
			must(err)
			nodes = append(nodes, id)
		}
		for pi := 0; pi < 2; pi++ {
			email := fmt.Sprintf("p%d@%s.example.org", pi, base)
			pid, err := s.Add(ctx, admin, core.Person, core.Record{"email": email, "first_name": "P", "last_name": base, "password": "benchpw"})
			must(err)
			must(s.Update(ctx, admin, core.Person, pid, core.Record{"enabled": true}))
			must(s.Link(ctx, admin, core.PersonSite, pid, site, nil))
			role, _ := s.Resolve(ctx, admin, core.Role, "user")
			must(s.Link(ctx, admin, core.PersonRole, pid, role, nil))
			_, err = s.Add(ctx, admin, core.Key, core.Record{"person_id": pid, "key_type": "ssh", "key": benchRSAKey(rng)})
			must(err)
			pis = append(pis, pid)
		}
		for k := 0; k < 5; k++ {
			sl, err := s.Add(ctx, admin, core.Slice, core.Record{"name": fmt.Sprintf("%s_slice%d", base, k), "url": "http://x", "description": "bench"})
			must(err)
			for _, pid := range pis[len(pis)-2:] {
				must(s.Link(ctx, admin, core.SlicePerson, sl, pid, nil))
			}
			for _, i := range rng.Perm(len(nodes))[:min(50, len(nodes))] {
				must(s.Link(ctx, admin, core.SliceNode, sl, nodes[i], nil))
			}
			vref, _ := s.Resolve(ctx, admin, core.TagType, "vref")
			_, err = s.Add(ctx, admin, core.SliceTag, core.Record{"slice_id": sl, "tag_type_id": vref, "value": "f39"})
			must(err)
		}
	}
	user, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: "p0@s00.example.org", Password: "benchpw"}, nil)
	must(err)
	us, err := s.CreateSession(ctx, user, 0)
	must(err)
	secret, err := s.IssueJoinToken(ctx, admin, nodes[0])
	must(err)
	key, err := s.JoinNode(ctx, nodes[0], secret, "")
	must(err)
	node, err := s.VerifyNodeHMAC(ctx, nodes[0], hmacHex(key, "[]"), "[]")
	must(err)
	ns, err := s.CreateSession(ctx, node, 0)
	must(err)
	srv := httptest.NewServer(NewHandler(s, Options{}))
	b.Cleanup(srv.Close)
	return s, srv.URL + "/PLCAPI/", us.ID, ns.ID
}

func benchRSAKey(rng *mrand.Rand) string {
	n := new(big.Int).Rand(rng, new(big.Int).Lsh(big.NewInt(1), 2048))
	n.SetBit(n, 2047, 1).SetBit(n, 0, 1)
	pk, err := ssh.NewPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		panic(err)
	}
	return string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(pk)))
}

// BenchmarkXMLRPC measures PLCAPI throughput over HTTP on the real
// service (SQLite) with 1,000 nodes: calls/s and p99 latency with 4
// concurrent clients (the Go codec on the client side).
func BenchmarkXMLRPC(b *testing.B) {
	_, url, us, ns := benchPlanet(b)
	user := map[string]any{"AuthMethod": "session", "session": us}
	node := map[string]any{"AuthMethod": "session", "session": ns}
	cases := []struct {
		name   string
		method string
		params []any
	}{
		{"GetNodes-1000", "GetNodes", []any{user, map[string]any{}, []any{"node_id", "hostname", "site_id", "boot_state"}}},
		{"GetNodes-1000-allfields", "GetNodes", []any{user}},
		{"GetSlices-100", "GetSlices", []any{user}},
		{"GetSlivers", "GetSlivers", []any{node}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			body, err := xmlrpc.EncodeCall(c.method, c.params...)
			if err != nil {
				b.Fatal(err)
			}
			// The first answer is decoded and checked; timed calls only read
			// the answer (decoding in this process would compete with the
			// server for the same 2 cores, unlike a real remote client).
			if _, err := benchCall(url, body, true); err != nil {
				b.Fatal(err)
			}
			const workers = 4
			lat := make([][]time.Duration, workers)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < b.N; i += workers {
						t0 := time.Now()
						if _, err := benchCall(url, body, false); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			p99 := all[(len(all)*99)/100]
			rate := float64(len(all)) / elapsed.Seconds()
			b.ReportMetric(rate, "calls/s")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.Logf("%s: %d calls, %.1f calls/s, p99 %.1f ms", c.name, len(all), rate, float64(p99.Microseconds())/1000)
		})
	}
}

func benchCall(url string, body []byte, decode bool) (any, error) {
	resp, err := http.Post(url, "text/xml", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	if decode {
		return xmlrpc.DecodeResponse(resp.Body, xmlrpc.Limits{MaxBytes: 256 << 20, MaxValues: 1 << 24})
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(data, []byte("<fault>")) {
		return nil, fmt.Errorf("fault: %s", data)
	}
	return nil, nil
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
