package traceroute

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

var samplePath = Path{
	Server: "n1.princeton.example", Target: netip.MustParseAddr("10.99.3.11"), Reached: true,
	Hops: []Hop{
		{TTL: 1, Addr: netip.MustParseAddr("10.42.0.5"), RTTs: []time.Duration{ms(0.081), ms(0.05), ms(0.049)}},
		{TTL: 2, Addr: netip.MustParseAddr("10.99.1.1"), RTTs: []time.Duration{ms(0.2), 0, ms(0.15)}},
		{TTL: 3, RTTs: []time.Duration{0, 0, 0}},
		{TTL: 4, Addr: netip.MustParseAddr("10.99.3.11"), RTTs: []time.Duration{ms(113.5), ms(112.25), ms(114)}},
	},
}

func TestPathRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WritePath(&b, samplePath); err != nil {
		t.Fatal(err)
	}
	want := "PATH n1.princeton.example 10.99.3.11\n" +
		"HOP 1 10.42.0.5 0.081 0.05 0.049\n" +
		"HOP 2 10.99.1.1 0.2 * 0.15\n" +
		"HOP 3 * * * *\n" +
		"HOP 4 10.99.3.11 113.5 112.25 114\n" +
		"END reached\n"
	if b.String() != want {
		t.Fatalf("wire:\n%s\nwant:\n%s", b.String(), want)
	}
	got, err := ReadPath(bufio.NewReader(&b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, samplePath) {
		t.Fatalf("read back %+v\nwant %+v", got, samplePath)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteRequest(&b, Request{Target: "10.99.3.11"}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "TRACE 10.99.3.11 30 3\n" {
		t.Fatalf("wire %q", b.String())
	}
	q, err := ReadRequest(bufio.NewReader(&b))
	if err != nil || q != (Request{Target: "10.99.3.11", MaxHops: 30, Probes: 3}) {
		t.Fatalf("read back %+v, %v", q, err)
	}
	q, err = ReadRequest(bufio.NewReader(strings.NewReader("TRACE planetlab1.cs.princeton.edu\r\n")))
	if err != nil || q != (Request{Target: "planetlab1.cs.princeton.edu", MaxHops: DefaultHops, Probes: DefaultProbes}) {
		t.Fatalf("defaults: %+v, %v", q, err)
	}
}

func TestBadRequests(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "EOF",
		"TRACE 10.0.0.1":           "not ended by a newline",
		"HELLO\n":                  `want "TRACE <target>`,
		"TRACE\n":                  `want "TRACE <target>`,
		"TRACE 10.0.0.1 1 2 3\n":   `want "TRACE <target>`,
		"TRACE ::1\n":              "not an IPv4 address",
		"TRACE -bad-.example\n":    "neither an IPv4 address nor a host name",
		"TRACE a..b\n":             "neither an IPv4 address nor a host name",
		"TRACE 10.0.0.1 0\n":       "max-hops 30", // 0 = default; see below
		"TRACE 10.0.0.1 65\n":      "max-hops 65 is out of range 1..64",
		"TRACE 10.0.0.1 9999999\n": `max-hops "9999999" is not a small number`,
		"TRACE 10.0.0.1 5 6\n":     "probes 6 is out of range 1..5",
		"TRACE 10.0.0.1 -1\n":      `max-hops "-1" is not a small number`,
		"TRACE 10.0.0.1\x00\n":     "control character",
		"TRACE " + strings.Repeat("a", 2000) + "\n": "line longer than 1024 bytes",
	} {
		_, err := ReadRequest(bufio.NewReaderSize(strings.NewReader(in), 16))
		if want == "max-hops 30" {
			if err != nil {
				t.Errorf("%q: %v, want the default", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", in, err, want)
		}
	}
}

func TestBadAnswers(t *testing.T) {
	for in, want := range map[string]string{
		"ERR busy: too many\n":                                        "server: busy: too many",
		"PATH n1 10.0.0.1\n":                                          "without END",
		"PATH n1 10.0.0.1\nEND reached\n":                             "reached, but the last hop is not the target",
		"PATH n1 nope\nEND unreached\n":                               `target "nope" is not an address`,
		"PATH n1 10.0.0.1\nHOP 2 10.0.0.1 1\nEND reached\n":           "hop 1 has TTL 2, want 1",
		"PATH n1 10.0.0.1\nHOP 1 10.0.0.1 *\nEND reached\n":           "an address needs an answered probe",
		"PATH n1 10.0.0.1\nHOP 1 * 1.5\nEND unreached\n":              "an address needs an answered probe",
		"PATH n1 10.0.0.1\nHOP 1 10.0.0.1 -3\nEND reached\n":          `RTT "-3" is not a number`,
		"PATH n1 10.0.0.1\nHOP 1 10.0.0.1 1 1 1 1 1 1\nEND reached\n": "6 probes, more than 5",
		"PATH n1 10.0.0.1\nHOP 1 ::1 1\nEND unreached\n":              "::1 is not an IPv4 address",
		"PATH n1 10.0.0.1\nWHAT\n":                                    `want "HOP <ttl>`,
		"PATH bad/name 10.0.0.1\nEND unreached\n":                     "not a host name",
	} {
		_, err := ReadPath(bufio.NewReader(strings.NewReader(in)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", in, err, want)
		}
		var re *RemoteError
		if strings.HasPrefix(in, "ERR") != errors.As(err, &re) {
			t.Errorf("%q: %v: RemoteError only for ERR", in, err)
		}
	}
	var b strings.Builder
	b.WriteString("PATH n1 10.0.0.1\n")
	for i := 1; i <= MaxHops+1; i++ {
		b.WriteString("HOP 1 * *\n")
	}
	if _, err := ReadPath(bufio.NewReader(strings.NewReader(b.String()))); err == nil || !IsWireError(err) {
		t.Errorf("too many hops: %v", err)
	}
}

// FuzzReadPath: the client decodes what any server sends. Whatever it
// accepts is valid and survives a round trip.
func FuzzReadPath(f *testing.F) {
	var b bytes.Buffer
	WritePath(&b, samplePath)
	f.Add(b.String())
	f.Add("ERR busy\n")
	f.Add("PATH n1 10.0.0.1\nHOP 1 * * *\nEND unreached\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ReadPath(bufio.NewReaderSize(strings.NewReader(in), 16))
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted an invalid path %+v: %v", p, err)
		}
		var out bytes.Buffer
		if err := WritePath(&out, p); err != nil {
			t.Fatalf("cannot write back %+v: %v", p, err)
		}
		first := out.String()
		q, err := ReadPath(bufio.NewReader(&out))
		if err != nil {
			t.Fatalf("cannot read back %q: %v", first, err)
		}
		var again bytes.Buffer
		WritePath(&again, q)
		if again.String() != first {
			t.Fatalf("not stable: %q then %q", first, again.String())
		}
	})
}

// FuzzReadRequest: the server decodes what anyone sends.
func FuzzReadRequest(f *testing.F) {
	f.Add("TRACE 10.99.3.11 30 3\n")
	f.Add("TRACE host.example\n")
	f.Add("TRACE 10.0.0.1 0 0\n")
	f.Fuzz(func(t *testing.T, in string) {
		q, err := ReadRequest(bufio.NewReaderSize(strings.NewReader(in), 16))
		if err != nil {
			return
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("accepted an invalid request %+v: %v", q, err)
		}
		var b bytes.Buffer
		if err := WriteRequest(&b, q); err != nil {
			t.Fatal(err)
		}
		if r, err := ReadRequest(bufio.NewReader(&b)); err != nil || r != q {
			t.Fatalf("round trip %+v -> %q -> %+v, %v", q, b.String(), r, err)
		}
	})
}
