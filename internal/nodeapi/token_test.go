package nodeapi

import (
	"strings"
	"testing"
)

func TestJoinTokenRoundTrip(t *testing.T) {
	in := JoinToken{NodeID: 42, Secret: "c2VjcmV0", Fingerprint: strings.Repeat("ab", 32)}
	out, err := ParseJoinToken(in.String())
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
}

func TestParseJoinTokenErrors(t *testing.T) {
	for _, s := range []string{"", "plj1:1:x", "plj2:1:x:", "plj1:0:x:", "plj1:-3:x:", "plj1:1::", "plj1:1:x:zz", "plj1:1:x:abcd"} {
		if _, err := ParseJoinToken(s); err == nil {
			t.Errorf("ParseJoinToken(%q): want error", s)
		}
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add("plj1:42:c2VjcmV0:" + strings.Repeat("ab", 32))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseJoinToken(s)
		if err != nil {
			return
		}
		again, err := ParseJoinToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("reparse of %q: %+v %v", tok.String(), again, err)
		}
	})
}
