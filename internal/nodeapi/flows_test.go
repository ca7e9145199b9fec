package nodeapi

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestSignPLC(t *testing.T) {
	h := SignPLC("k3y", 5, "GET", "/flows?addr=1.2.3.4", now)
	if err := VerifyPLC("k3y", 5, "GET", "/flows?addr=1.2.3.4", h, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key      string
		id       int64
		uri, hdr string
		at       time.Time
		want     string
	}{
		{"other", 5, "/flows?addr=1.2.3.4", h, now, "bad signature"},
		{"k3y", 6, "/flows?addr=1.2.3.4", h, now, "signed for node 5, this is node 6"},
		{"k3y", 5, "/flows?addr=1.2.3.5", h, now, "bad signature"},
		{"k3y", 5, "/flows?addr=1.2.3.4", h, now.Add(time.Hour), "away from the node's clock"},
		{"k3y", 5, "/flows?addr=1.2.3.4", "PLNode 5:k3y", now, "want Authorization: PLC"},
		{"k3y", 5, "/flows?addr=1.2.3.4", "PLC 5:x", now, "malformed"},
	} {
		if err := VerifyPLC(tc.key, tc.id, "GET", tc.uri, tc.hdr, tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc, err, tc.want)
		}
	}
}
