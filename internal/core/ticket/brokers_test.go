package ticket

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestParseBrokers(t *testing.T) {
	pub := goldenKey().Public().(ed25519.PublicKey)
	b64 := base64.StdEncoding.EncodeToString(pub)
	pub2, _, _ := ed25519.GenerateKey(nil)
	b64two := base64.StdEncoding.EncodeToString(pub2)
	got, err := ParseBrokers([]string{"gush=" + b64, "sirius-2.x_y=" + b64two})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != NewPublicKey(pub, "gush") || got[1].Issuer != "sirius-2.x_y" || got[1].ID != KeyID(pub2) {
		t.Fatalf("%+v", got)
	}
	if got, err := ParseBrokers(nil); err != nil || got != nil {
		t.Fatalf("no brokers: %v %v", got, err)
	}
	for _, c := range []struct {
		name  string
		specs []string
		want  string
	}{
		{"no =", []string{"gush"}, `"gush": want <name>=<base64 Ed25519 public key>`},
		{"empty name", []string{"=" + b64}, `broker name "": want 1 to 64 characters`},
		{"long name", []string{strings.Repeat("a", 65) + "=" + b64}, "want 1 to 64 characters"},
		{"upper case", []string{"Gush=" + b64}, `'G' is not a lower-case letter`},
		{"plc", []string{"plc=" + b64}, "broker name plc is PLC's own key's"},
		{"bad base64", []string{"gush=not*base64"}, "broker gush: key is not standard base64"},
		{"url base64", []string{"gush=" + base64.URLEncoding.EncodeToString(make([]byte, 32))[:40] + "-_"}, "key is not standard base64"},
		{"wrong length", []string{"gush=" + base64.StdEncoding.EncodeToString(make([]byte, 31))}, "broker gush: key is 31 bytes, an Ed25519 public key is 32"},
		{"private key", []string{"gush=" + base64.StdEncoding.EncodeToString(goldenKey())}, "key is 64 bytes"},
		{"name twice", []string{"gush=" + b64, "gush=" + b64two}, "broker gush named twice"},
		{"key twice", []string{"gush=" + b64, "other=" + b64}, "brokers gush and other have the same key " + KeyID(pub)},
	} {
		got, err := ParseBrokers(c.specs)
		if core.ErrorField(err) != "ticket-broker" || !strings.Contains(err.Error(), c.want) || got != nil {
			t.Errorf("%s: %v %v, want %q", c.name, got, err, c.want)
		}
	}
}

// A ticket a trusted broker signed verifies against the keys a node is
// given (PLC's and the broker's); one by a broker PLC does not list is
// refused, naming the key.
func TestBrokerTicketVerifies(t *testing.T) {
	plcPub, _, _ := ed25519.GenerateKey(nil)
	brokerPub, brokerPriv, _ := ed25519.GenerateKey(nil)
	_, strangerPriv, _ := ed25519.GenerateKey(nil)
	brokers, err := ParseBrokers([]string{"gush=" + base64.StdEncoding.EncodeToString(brokerPub)})
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := Trusted(append([]core.TicketKey{NewPublicKey(plcPub, "plc")}, brokers...))
	if err != nil {
		t.Fatal(err)
	}
	w, err := Sign(goldenTicket(), brokerPriv)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := Verify(w, trusted)
	if err != nil || tk.Sliver.Name != "pl_broker" || tk.Key != KeyID(brokerPub) {
		t.Fatalf("broker's ticket: %+v %v", tk, err)
	}
	w, err = Sign(goldenTicket(), strangerPriv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(w, trusted); core.ErrorCode(err) != core.Unauthenticated || !strings.Contains(err.Error(), "does not trust") {
		t.Fatalf("unknown broker's ticket: %v", err)
	}
}

// FuzzParseBrokers: a spec is refused with a ticket-broker field error or
// gives a key Trusted accepts, under the name before the '='.
func FuzzParseBrokers(f *testing.F) {
	f.Add("gush=" + base64.StdEncoding.EncodeToString(goldenKey().Public().(ed25519.PublicKey)))
	f.Add("gush=AAAA")
	f.Add("=")
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseBrokers([]string{spec})
		if err != nil {
			if core.ErrorField(err) != "ticket-broker" {
				t.Fatalf("error without the field: %v", err)
			}
			return
		}
		name, _, _ := strings.Cut(spec, "=")
		if len(got) != 1 || got[0].Issuer != name {
			t.Fatalf("%q gave %+v", spec, got)
		}
		if _, err := Trusted(got); err != nil {
			t.Fatalf("%q: parsed key refused: %v", spec, err)
		}
	})
}
