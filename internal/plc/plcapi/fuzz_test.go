package plcapi

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/planetlab/pl/internal/xmlrpc"
)

// FuzzHandler posts arbitrary bodies to the handler (over the fake
// registry): it must never panic and must answer 200 (result or fault),
// 400 or 413; 500 only for the fake's deliberately broken GetSlices.
func FuzzHandler(f *testing.F) {
	for _, c := range []struct {
		m string
		p []any
	}{
		{"GetNodes", []any{adminAuth, map[string]any{"hostname": "*.org", "-SORT": "-hostname"}, []any{"hostname"}}},
		{"AddSliceTag", []any{adminAuth, "x_y", "vref", "f", nil, "g"}},
		{"system.multicall", []any{[]any{map[string]any{"methodName": "AuthCheck", "params": []any{userAuth}}}}},
		{"GetSlivers", []any{map[string]any{"AuthMethod": "hmac", "node_id": 7, "value": "00"}, 7}},
		{"AddLeases", []any{adminAuth, []any{1, "n"}, "s", "2026-01-01 00:00", 3600}},
	} {
		b, _ := xmlrpc.EncodeCall(c.m, c.p...)
		f.Add(b)
	}
	h, _ := newTestHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/PLCAPI/", bytes.NewReader(body)))
		switch rec.Code {
		case 200, 400, 413:
		case 500:
			if !bytes.Contains(body, []byte("GetSlices")) {
				t.Fatalf("HTTP 500 for %q", body)
			}
		default:
			t.Fatalf("HTTP %d", rec.Code)
		}
	})
}
