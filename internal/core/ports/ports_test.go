package ports

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want string // Format of the result; "" with wantErr
		err  string // substring of the error
	}{
		{in: "", want: ""},
		{in: "  ,, ", want: ""},
		{in: "8080", want: "tcp/8080"},
		{in: "tcp/8080", want: "tcp/8080"},
		{in: "TCP/8080", want: "tcp/8080"},
		{in: "udp/5000-5010", want: "udp/5000-5010"},
		{in: "udp/53,tcp/53", want: "tcp/53, udp/53"},
		{in: "tcp/80 tcp/443\tudp/1-1", want: "tcp/80, tcp/443, udp/1"},
		{in: "65535", want: "tcp/65535"},
		{in: "0", err: `port "0": 0 is out of range`},
		{in: "65536", err: `port "65536": 65536 is out of range`},
		{in: "-1", err: `port "-1": "" is not a port number`},
		{in: "+80", err: `"+80" is not a port number`},
		{in: "sctp/80", err: `protocol "sctp" is not tcp or udp`},
		{in: "tcp/", err: `port "tcp/": "" is not a port number`},
		{in: "tcp/10-5", err: "range end 5 is below its start 10"},
		{in: "tcp/10-", err: `"" is not a port number`},
		{in: "tcp/1-2-3", err: `"2-3" is not a port number`},
		{in: "lots", err: `"lots" is not a port number`},
		{in: "tcp/80, 80", err: `port "80" overlaps "tcp/80"`},
		{in: "udp/100-200 udp/150", err: `overlaps "udp/100-200"`},
		{in: "0000080", err: "is not a port number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if f := Format(got); f != tt.want {
				t.Fatalf("Parse(%q) = %q, want %q", tt.in, f, tt.want)
			}
		})
	}
}

func TestParseTooMany(t *testing.T) {
	var items []string
	for i := 1; i <= MaxItems+1; i++ {
		items = append(items, fmt.Sprintf("udp/%d", 1000+i))
	}
	if _, err := Parse(strings.Join(items, ",")); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("err = %v", err)
	}
}

func TestOverlapsAndConflict(t *testing.T) {
	a := Port{"tcp", 100, 200}
	for _, tt := range []struct {
		b    Port
		want bool
	}{
		{Port{"tcp", 200, 300}, true},
		{Port{"tcp", 50, 100}, true},
		{Port{"tcp", 150, 150}, true},
		{Port{"tcp", 201, 300}, false},
		{Port{"tcp", 1, 99}, false},
		{Port{"udp", 150, 150}, false},
	} {
		if got := a.Overlaps(tt.b); got != tt.want || tt.b.Overlaps(a) != tt.want {
			t.Errorf("%v overlaps %v = %v, want %v", a, tt.b, got, tt.want)
		}
	}
	x, y, ok := Conflict([]Port{{"udp", 1, 1}, a}, []Port{{"tcp", 7, 7}, {"tcp", 199, 199}})
	if !ok || x != a || y != (Port{"tcp", 199, 199}) {
		t.Fatalf("Conflict = %v %v %v", x, y, ok)
	}
	if !a.Contains("tcp", 100) || a.Contains("udp", 100) || a.Contains("tcp", 201) {
		t.Fatal("Contains wrong")
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Port{{"icmp", 1, 1}, {"tcp", 0, 0}, {"udp", 5, 4}} {
		if p.Validate() == nil {
			t.Errorf("%#v validated", p)
		}
	}
	if err := (Port{"udp", 5, 6}).Validate(); err != nil {
		t.Error(err)
	}
}

// FuzzParse checks that Parse never panics, that what it accepts is valid,
// non-overlapping, and survives a Format/Parse round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "8080", "tcp/80,udp/53", "udp/5000-5010 tcp/1", "tcp/65535-1", "x/1", "1-", "/", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := Parse(s)
		if err != nil {
			return
		}
		for i, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("Parse(%q) returned invalid %v: %v", s, p, err)
			}
			for _, q := range ps[:i] {
				if p.Overlaps(q) {
					t.Fatalf("Parse(%q) returned overlapping %v %v", s, p, q)
				}
			}
		}
		again, err := Parse(Format(ps))
		if err != nil {
			t.Fatalf("Parse(Format(%v)) = %v", ps, err)
		}
		if !slices.Equal(again, Sorted(ps)) {
			t.Fatalf("round trip %v -> %v", ps, again)
		}
	})
}

func TestListText(t *testing.T) {
	var l List
	if err := json.Unmarshal([]byte(`"udp/53, tcp/80-81"`), &l); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct{ P List }{l})
	if err != nil || string(b) != `{"P":"tcp/80-81, udp/53"}` {
		t.Errorf("marshal = %s %v", b, err)
	}
	if err := json.Unmarshal([]byte(`"tcp/0"`), &l); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("bad text accepted: %v", err)
	}
	if err := (List{{"tcp", 1, 10}, {"udp", 5, 5}}).Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []List{{{"tcp", 0, 0}}, {{"sctp", 1, 1}}, {{"tcp", 5, 4}}, {{"tcp", 1, 10}, {"tcp", 10, 12}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
