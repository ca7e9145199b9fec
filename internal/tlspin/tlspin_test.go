package tlspin

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestParse(t *testing.T) {
	fp := "AB:cd" + strings.Repeat("00", 30)
	if b, err := Parse(fp); err != nil || len(b) != 32 || b[0] != 0xab || b[1] != 0xcd {
		t.Errorf("Parse(%q) = %x %v", fp, b, err)
	}
	for _, bad := range []string{"", "xyz", "abcd", strings.Repeat("ab", 33)} {
		if _, err := Parse(bad); core.ErrorField(err) != "fingerprint" {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
}

// TestPin connects to a TLS server by its pinned fingerprint, and is
// refused with another; Peer reads the fingerprint it presents.
func TestPin(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	fp := Fingerprint(srv.Certificate().Raw)
	got, err := Peer(context.Background(), srv.Listener.Addr().String())
	if err != nil || got != fp {
		t.Fatalf("Peer: %s, %v; want %s", got, err, fp)
	}
	want, err := Parse(fp)
	if err != nil {
		t.Fatal(err)
	}
	get := func(cfg []byte) error {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: Config(cfg)}}
		resp, err := hc.Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(want); err != nil {
		t.Errorf("pinned: %v", err)
	}
	other := bytes.Repeat([]byte{0}, 32)
	if err := get(other); err == nil || !strings.Contains(err.Error(), "does not match the pinned") {
		t.Errorf("other pin: %v", err)
	}
}
