package dev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    int
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(5), 99, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 99, 4 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 50, 50 * time.Millisecond},
	} {
		if got := pct(tc.in, tc.q); got != tc.want {
			t.Errorf("pct(%v, %d) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	old := RunDir
	RunDir = t.TempDir()
	t.Cleanup(func() { RunDir = old })
	r := &Record{Prefix: "pldevx1-", DataDir: t.TempDir(), TempData: true, Cgroup: "/pldevx1", PID: 42,
		Procs: []ProcInfo{{Name: "plc", PID: 43, Start: 7}}}
	if err := r.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.DataDir, "dev.json")); err != nil {
		t.Fatalf("no copy in the data dir: %v", err)
	}
	recs, err := LoadRecords()
	if err != nil || len(recs) != 1 || recs[0].Prefix != r.Prefix || recs[0].Procs[0].Start != 7 {
		t.Fatalf("LoadRecords = %+v, %v", recs, err)
	}
	os.WriteFile(filepath.Join(RunDir, "bad.json"), []byte("{"), 0o600)
	if _, err := LoadRecords(); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("corrupt record: err = %v, want one naming bad.json", err)
	}
}

func TestRemoveCgroupsRefusesForeign(t *testing.T) {
	for _, rel := range []string{"", "/", "/system.slice", "user.slice/x"} {
		if err := removeCgroups(rel); err == nil {
			t.Errorf("removeCgroups(%q) accepted a cgroup that is not ours", rel)
		}
	}
}

func TestProcStart(t *testing.T) {
	if procStart(os.Getpid()) == 0 {
		t.Fatal("no start time for this process")
	}
	if procStart(1<<30) != 0 {
		t.Fatal("start time for a process that cannot exist")
	}
	if (ProcInfo{PID: os.Getpid(), Start: procStart(os.Getpid()) + 1}).alive() {
		t.Fatal("a reused pid counts as alive")
	}
}
