package core

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func goodFigures() *NodeFigures {
	return &NodeFigures{
		Time: time.Unix(1700000000, 0).UTC(), Load1: 0.5, Load5: 0.4, Load15: 0.3, CPUs: 2, CPUPct: 12.5,
		MemTotal: 4 << 30, MemUsed: 1 << 30, SwapTotal: 1 << 30, DiskTotal: 100 << 30, DiskUsed: 10 << 30,
		UptimeSec: 3600, ClockOffsetMs: -12, ClockKnown: true, SliverCount: 2, RxBytes: 1000, TxBytes: 2000, SSH: SSHUp,
		Slivers: []SliverFigures{
			{Slice: "pl_a", State: "running", CPUSeconds: 10, CPUPct: 5, MemUsed: 1 << 20, MemLimit: 1 << 30, Procs: 3, IPv6: "2001:db8:7::1:5"},
			{Slice: "pl_b", State: "frozen", LastError: "bad vsys"},
		},
	}
}

func TestFiguresValidate(t *testing.T) {
	if err := goodFigures().Validate(); err != nil {
		t.Fatalf("good figures refused: %v", err)
	}
	for _, ssh := range []string{"", SSHUp, SSHDown, SSHOff} { // "": an older node without the field
		f := goodFigures()
		f.SSH = ssh
		if err := f.Validate(); err != nil {
			t.Errorf("ssh %q refused: %v", ssh, err)
		}
	}
	var nilF *NodeFigures
	if err := nilF.Validate(); err != nil {
		t.Fatalf("nil figures refused: %v", err)
	}
	cases := []struct {
		field string
		edit  func(f *NodeFigures)
	}{
		{"figures.time", func(f *NodeFigures) { f.Time = time.Time{} }},
		{"figures.load1", func(f *NodeFigures) { f.Load1 = -1 }},
		{"figures.load15", func(f *NodeFigures) { f.Load15 = math.NaN() }},
		{"figures.cpu_pct", func(f *NodeFigures) { f.CPUPct = 100.5 }},
		{"figures.cpus", func(f *NodeFigures) { f.CPUs = -1 }},
		{"figures.uptime_sec", func(f *NodeFigures) { f.UptimeSec = math.Inf(1) }},
		{"figures.clock_offset_ms", func(f *NodeFigures) { f.ClockOffsetMs = MaxClockOffsetMs + 1 }},
		{"figures.sliver_count", func(f *NodeFigures) { f.SliverCount = 1 }},
		{"figures.mem_used", func(f *NodeFigures) { f.MemUsed = f.MemTotal + 1 }},
		{"figures.disk_total", func(f *NodeFigures) { f.DiskTotal = math.MaxUint64; f.DiskUsed = 0 }},
		{"figures.rx_drops", func(f *NodeFigures) { f.RxDrops = MaxFigure + 1 }},
		{"figures.ssh", func(f *NodeFigures) { f.SSH = "listening" }},
		{"figures.ssh", func(f *NodeFigures) { f.SSH = "UP" }},
		{"figures.slivers[1].slice", func(f *NodeFigures) { f.Slivers[1].Slice = "" }},
		{"figures.slivers[1].slice", func(f *NodeFigures) { f.Slivers[1].Slice = "pl_a" }},
		{"figures.slivers[0].slice", func(f *NodeFigures) { f.Slivers[0].Slice = strings.Repeat("x", MaxSliceName+1) }},
		{"figures.slivers[0].state", func(f *NodeFigures) { f.Slivers[0].State = "run\x00" }},
		{"figures.slivers[1].last_error", func(f *NodeFigures) { f.Slivers[1].LastError = strings.Repeat("e", MaxSliverError+1) }},
		{"figures.slivers[1].last_error", func(f *NodeFigures) { f.Slivers[1].LastError = "\xff" }},
		{"figures.slivers[0].cpu_pct", func(f *NodeFigures) { f.Slivers[0].CPUPct = -0.1 }},
		{"figures.slivers[0].cpu_seconds", func(f *NodeFigures) { f.Slivers[0].CPUSeconds = math.NaN() }},
		{"figures.slivers[0].tx_packets", func(f *NodeFigures) { f.Slivers[0].TxPackets = math.MaxUint64 }},
		{"figures.slivers[0].ipv6", func(f *NodeFigures) { f.Slivers[0].IPv6 = "10.42.0.22" }},
		{"figures.slivers[0].ipv6", func(f *NodeFigures) { f.Slivers[0].IPv6 = "::ffff:10.42.0.22" }},
		{"figures.slivers[0].ipv6", func(f *NodeFigures) { f.Slivers[0].IPv6 = "fe80::1" }},
		{"figures.slivers[0].ipv6", func(f *NodeFigures) { f.Slivers[0].IPv6 = "2001:db8::1%eth0" }},
		{"figures.slivers[0].ipv6", func(f *NodeFigures) { f.Slivers[0].IPv6 = "2001:db8::/64" }},
		{"figures.slivers[0].ipv6", func(f *NodeFigures) { f.Slivers[0].IPv6 = strings.Repeat("a", 5000) }},
		{"figures.slivers", func(f *NodeFigures) {
			f.Slivers = make([]SliverFigures, MaxSliverFigures+1)
			f.SliverCount = len(f.Slivers)
		}},
	}
	for _, c := range cases {
		f := goodFigures()
		c.edit(f)
		err := f.Validate()
		if err == nil {
			t.Errorf("%s: accepted", c.field)
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Code != Invalid || e.Field != c.field {
			t.Errorf("want invalid %s, got %#v (%v)", c.field, err, err)
		}
	}
}

// TestFiguresBound: Bound makes any summary of well-formed figures valid,
// keeps the busiest slivers, and a maximal summary stays under
// MaxFiguresJSON once encoded.
func TestFiguresBound(t *testing.T) {
	f := goodFigures()
	f.Slivers = nil
	for i := range MaxSliverFigures + 50 {
		f.Slivers = append(f.Slivers, SliverFigures{
			Slice: fmt.Sprintf("%s%04d", strings.Repeat("s", MaxSliceName-4), i), State: strings.Repeat("é", 40),
			CPUSeconds: 1e14, CPUPct: float64(i) / 100, MemUsed: MaxFigure, MemLimit: MaxFigure, Procs: MaxFigure,
			DiskUsed: MaxFigure, DiskQuota: MaxFigure, RxBytes: MaxFigure, TxBytes: MaxFigure, RxPackets: MaxFigure, TxPackets: MaxFigure,
			LastError: "line\x01" + strings.Repeat("ü", 300), IPv6: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		})
	}
	f.Bound()
	if err := f.Validate(); err != nil {
		t.Fatalf("bounded figures refused: %v", err)
	}
	if len(f.Slivers) != MaxSliverFigures || f.SliverCount != MaxSliverFigures+50 {
		t.Fatalf("kept %d of %d slivers", len(f.Slivers), f.SliverCount)
	}
	for _, s := range f.Slivers {
		if s.CPUPct < 0.5 {
			t.Fatalf("kept idle sliver %s (cpu %g) over busier ones", s.Slice, s.CPUPct)
		}
	}
	if !strings.HasPrefix(f.Slivers[0].LastError, "line ü") {
		t.Errorf("control character not replaced: %q", f.Slivers[0].LastError[:10])
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxFiguresJSON {
		t.Fatalf("maximal summary encodes to %d bytes, over MaxFiguresJSON %d", len(b), MaxFiguresJSON)
	}
	t.Logf("maximal summary: %d bytes of JSON", len(b))
}

// FuzzFigures: decoding any JSON and validating never panics, and what
// Validate accepts survives a JSON round trip still valid.
func FuzzFigures(f *testing.F) {
	b, _ := json.Marshal(goodFigures())
	f.Add(b)
	f.Add([]byte(`{"time":"2024-01-01T00:00:00Z","slivers":[{"slice":"a"},{"slice":"a"}],"sliver_count":2}`))
	f.Add([]byte(`{"load1":1e309}`))
	f.Add([]byte(`{"time":"2024-01-01T00:00:00Z","ssh":"up\u0000"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var nf NodeFigures
		if json.Unmarshal(data, &nf) != nil {
			return
		}
		if nf.Validate() != nil {
			return
		}
		out, err := json.Marshal(&nf)
		if err != nil {
			t.Fatalf("valid figures do not encode: %v", err)
		}
		var again NodeFigures
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatal(err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("round trip invalid: %v", err)
		}
	})
}
