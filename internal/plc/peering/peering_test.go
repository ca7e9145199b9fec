package peering

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyFileAndText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "peer.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second start read another key: %v", err)
	}
	txt := FormatPublicKey(k1.Public().(ed25519.PublicKey))
	if !strings.HasPrefix(txt, KeyPrefix) {
		t.Fatal(txt)
	}
	for _, s := range []string{txt, " " + strings.TrimPrefix(txt, KeyPrefix) + "\n"} {
		pub, err := ParsePublicKey(s)
		if err != nil || !pub.Equal(k1.Public()) {
			t.Fatalf("ParsePublicKey(%q): %v", s, err)
		}
	}
	for s, want := range map[string]string{"ed25519:AAAA": "3 bytes", "ed25519:!!": "base64", "": "0 bytes"} {
		if _, err := ParsePublicKey(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePublicKey(%q) = %v, want %q", s, err, want)
		}
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("junk key file accepted")
	}
}

func TestSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"x":1}`)
	h := http.Header{}
	Sign(h, priv, KindRequest, "GET", "/api/v1/peer/data", now, body)
	if err := Verify(h, pub, KindRequest, "GET", "/api/v1/peer/data", now.Add(time.Minute), body); err != nil {
		t.Fatal(err)
	}
	if k, err := SignedKey(h); err != nil || k != FormatPublicKey(pub) {
		t.Fatalf("SignedKey = %q, %v", k, err)
	}
	cases := []struct {
		name       string
		h          http.Header
		pub        ed25519.PublicKey
		kind, path string
		at         time.Time
		body       []byte
		want       string
	}{
		{"other body", h, pub, KindRequest, "/api/v1/peer/data", now, []byte(`{"x":2}`), "bad signature"},
		{"other path", h, pub, KindRequest, "/api/v1/peer/notify", now, body, "bad signature"},
		{"response for request", h, pub, KindResponse, "/api/v1/peer/data", now, body, "bad signature"},
		{"other key", h, other, KindRequest, "/api/v1/peer/data", now, body, "another key"},
		{"stale", h, pub, KindRequest, "/api/v1/peer/data", now.Add(6 * time.Minute), body, "away from this PLC's clock"},
		{"future", h, pub, KindRequest, "/api/v1/peer/data", now.Add(-6 * time.Minute), body, "away from this PLC's clock"},
		{"unsigned", http.Header{}, pub, KindRequest, "/api/v1/peer/data", now, body, "unsigned"},
		{"bad time", withHeader(h, HeaderTime, "soon"), pub, KindRequest, "/api/v1/peer/data", now, body, "not UNIX seconds"},
		{"bad signature text", withHeader(h, HeaderSignature, "AAAA"), pub, KindRequest, "/api/v1/peer/data", now, body, "not a base64 Ed25519 signature"},
	}
	for _, c := range cases {
		err := Verify(c.h, c.pub, c.kind, "GET", c.path, c.at, c.body)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func withHeader(h http.Header, k, v string) http.Header {
	c := h.Clone()
	c.Set(k, v)
	return c
}

func TestMessageIsCanonical(t *testing.T) {
	got := string(Message(KindRequest, "GET", "/p?q=1", 7, nil))
	want := "pl-peer-v1\nrequest\nGET\n/p?q=1\n7\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Fatalf("Message = %q", got)
	}
}
