package ticket

import (
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt")

// goldenKey is derived from the seed 00 01 02 ... 1f.
func goldenKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func goldenTicket() Ticket {
	return Ticket{
		V: 1, Nonce: "00112233445566778899aabbccddeeff", NotBefore: 1_800_000_000, NotAfter: 1_800_003_600,
		Nodes: []int64{3, 7},
		RSpec: rspec.RSpec{CPUShare: 4, CPUPct: 25, NetMinKbit: 1000, NetMaxKbit: 10_000, MemKiB: 1 << 20},
		Sliver: core.Sliver{Name: "pl_broker", SliceID: 42, Instantiation: "delegated", Expires: 1_800_086_400,
			Keys:       []core.SliverKey{{KeyType: "ssh", Key: "ssh-ed25519 AAAA user@example <x>"}},
			Attributes: []core.Attribute{{TagName: "vref", Value: "default"}}},
	}
}

// TestGolden pins the wire form: the canonical payload and the Ed25519
// signature of a fixed ticket under a fixed key. Any change of encoding
// or signing input breaks it (and every ticket in circulation).
func TestGolden(t *testing.T) {
	wire, err := Sign(goldenTicket(), goldenKey())
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/golden.txt"
	if *update {
		if err := os.WriteFile(path, []byte(wire+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wire != strings.TrimSpace(string(want)) {
		t.Fatalf("wire form changed:\n got %s\nwant %s", wire, want)
	}
	// The payload is readable JSON in field order, HTML characters escaped.
	_, payload, _, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(payload), `{"v":1,"key":"ed25519:`) || !strings.Contains(string(payload), `\u003cx\u003e`) {
		t.Errorf("payload %s", payload)
	}
	pub := goldenKey().Public().(ed25519.PublicKey)
	got, err := Verify(wire, map[string]ed25519.PublicKey{KeyID(pub): pub})
	if err != nil {
		t.Fatal(err)
	}
	if got.Sliver.Name != "pl_broker" || !got.For(7) || got.For(5) {
		t.Errorf("verified %+v", got)
	}
}

func TestRefusals(t *testing.T) {
	priv := goldenKey()
	pub := priv.Public().(ed25519.PublicKey)
	trusted := map[string]ed25519.PublicKey{KeyID(pub): pub}
	good, _ := Sign(goldenTicket(), priv)
	p64, s64, _ := strings.Cut(strings.TrimPrefix(good, Prefix), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(p64)
	sig, _ := base64.RawURLEncoding.DecodeString(s64)
	enc := base64.RawURLEncoding.EncodeToString
	forged := strings.Replace(string(payload), `"cpu_pct":25`, `"cpu_pct":95`, 1)
	spaced := strings.Replace(string(payload), `"v":1,`, `"v": 1,`, 1)
	unknown := strings.Replace(string(payload), `"v":1,`, `"v":1,"x":2,`, 1)
	sig2 := append([]byte(nil), sig...)
	sig2[0] ^= 1
	_, other, _ := ed25519.GenerateKey(nil)
	byOther, _ := Sign(goldenTicket(), other)
	bad := goldenTicket()
	bad.Nodes = []int64{7, 3}
	for _, c := range []struct {
		name, wire string
		code       core.Code
		want       string
	}{
		{"forged rspec", Prefix + enc([]byte(forged)) + "." + s64, core.Unauthenticated, "does not verify"},
		{"flipped signature bit", Prefix + p64 + "." + enc(sig2), core.Unauthenticated, "does not verify"},
		{"untrusted signer", byOther, core.Unauthenticated, "does not trust"},
		{"not canonical", Prefix + enc([]byte(spaced)) + "." + s64, core.Invalid, "canonical"},
		{"unknown field", Prefix + enc([]byte(unknown)) + "." + s64, core.Invalid, "unknown field"},
		{"no prefix", strings.TrimPrefix(good, Prefix), core.Invalid, "does not start"},
		{"no signature", Prefix + p64, core.Invalid, "no signature"},
		{"padded base64", Prefix + p64 + "=." + s64, core.Invalid, "base64"},
		{"short signature", Prefix + p64 + "." + enc(sig[:10]), core.Invalid, "10 bytes"},
		{"oversized", Prefix + strings.Repeat("A", MaxSize), core.Invalid, "more than"},
	} {
		_, err := Verify(c.wire, trusted)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s %q", c.name, err, c.code, c.want)
		}
	}
	if _, err := Sign(bad, priv); core.ErrorField(err) != "nodes" {
		t.Errorf("unsorted nodes signed: %v", err)
	}
}

func TestTrusted(t *testing.T) {
	pub := goldenKey().Public().(ed25519.PublicKey)
	k := NewPublicKey(pub, "plc")
	m, err := Trusted([]core.TicketKey{k})
	if err != nil || !m[k.ID].Equal(pub) {
		t.Fatalf("%v %v", m, err)
	}
	k.ID = "ed25519:0000000000000000"
	if _, err := Trusted([]core.TicketKey{k}); err == nil || !strings.Contains(err.Error(), "its bytes say") {
		t.Errorf("mismatched id accepted: %v", err)
	}
}

// FuzzDecode: whatever the input, Decode either refuses it or returns a
// checked ticket whose canonical encoding is exactly the payload it read;
// re-signing a decoded ticket always verifies.
func FuzzDecode(f *testing.F) {
	good, _ := Sign(goldenTicket(), goldenKey())
	f.Add(good)
	f.Add(Prefix + "e30." + strings.Repeat("A", 86))
	f.Add("pl1..")
	f.Add("")
	priv := goldenKey()
	pub := priv.Public().(ed25519.PublicKey)
	trusted := map[string]ed25519.PublicKey{KeyID(pub): pub}
	f.Fuzz(func(t *testing.T, wire string) {
		tk, payload, _, err := Decode(wire)
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("decode error with code %s: %v", core.ErrorCode(err), err)
			}
			return
		}
		if err := tk.Check(); err != nil {
			t.Fatalf("decoded ticket fails Check: %v", err)
		}
		again, err := tk.Encode()
		if err != nil || string(again) != string(payload) {
			t.Fatalf("not canonical: %s vs %s", again, payload)
		}
		w2, err := Sign(*tk, priv)
		if err != nil {
			t.Fatalf("re-sign: %v", err)
		}
		if _, err := Verify(w2, trusted); err != nil {
			t.Fatalf("re-signed ticket does not verify: %v", err)
		}
	})
}
