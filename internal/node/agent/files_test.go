package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestCacheRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "desired.json")
	if _, _, err := LoadCache(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing cache: %v", err)
	}
	st := &core.NodeState{Version: "abc", NodeID: 3, Hostname: "n<1>&", Slivers: []core.Sliver{sliverOf("pl_a", 1, "initscript_code", "echo <hi> & \"bye\"")}}
	if err := SaveCache(path, st); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600", fi.Mode().Perm())
	}
	got, saved, err := LoadCache(path)
	if err != nil || got.Version != "abc" || got.Slivers[0].Attributes[0].Value != "echo <hi> & \"bye\"" || saved.IsZero() {
		t.Fatalf("load: %+v %v", got, err)
	}
	good, _ := os.ReadFile(path)

	corrupt := map[string][]byte{
		"truncated":   good[:len(good)/2],
		"garbage":     []byte("\x00\x01not json"),
		"empty":       {},
		"edited":      []byte(strings.Replace(string(good), `"pl_a"`, `"pl_b"`, 1)),
		"no checksum": []byte(strings.Replace(string(good), `"sha256"`, `"sha"`, 1)),
		"old format":  []byte(strings.Replace(string(good), `"format": 1`, `"format": 9`, 1)),
	}
	for name, data := range corrupt {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadCache(path)
		if !errors.Is(err, ErrCacheCorrupt) {
			t.Errorf("%s: got %v, want ErrCacheCorrupt", name, err)
		}
	}
}

func TestXIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xids.json")
	x, err := LoadXIDs(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Allocate([]string{"pl_b", "pl_a", "pl_c"}); err != nil {
		t.Fatal(err)
	}
	if x.Get("pl_a") != 1 || x.Get("pl_b") != 2 || x.Get("pl_c") != 3 {
		t.Fatalf("allocation: %v", x.Snapshot())
	}
	// Stable: allocating again changes nothing.
	x.Allocate([]string{"pl_c", "pl_d"})
	if x.Get("pl_c") != 3 || x.Get("pl_d") != 4 {
		t.Fatalf("stability: %v", x.Snapshot())
	}
	// Reused only after release.
	x.Release("pl_b")
	x.Allocate([]string{"pl_e"})
	if x.Get("pl_e") != 2 {
		t.Fatalf("reuse: %v", x.Snapshot())
	}
	// Persisted.
	y, err := LoadXIDs(path)
	if err != nil || y.Get("pl_e") != 2 || y.Get("pl_a") != 1 || y.Get("pl_b") != 0 {
		t.Fatalf("reload: %v %v", y.Snapshot(), err)
	}
	if err := y.Adopt("pl_z", 1); err == nil {
		t.Fatal("adopting an xid held by another slice must fail")
	}
	if err := y.Adopt("pl_z", 100); err != nil || y.Get("pl_z") != 100 {
		t.Fatalf("adopt: %v", err)
	}
	os.WriteFile(path, []byte(`{"a":1,"b":1}`), 0o600)
	if _, err := LoadXIDs(path); err == nil {
		t.Fatal("duplicate xids accepted")
	}
	os.WriteFile(path, []byte(`{"a":4095}`), 0o600)
	if _, err := LoadXIDs(path); err == nil {
		t.Fatal("xid 4095 accepted")
	}
}

func TestXIDExhaustion(t *testing.T) {
	x, _ := LoadXIDs(filepath.Join(t.TempDir(), "xids.json"))
	names := make([]string, MaxXID+1)
	for i := range names {
		names[i] = "s" + strings.Repeat("x", i/100) + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26)) + string(rune('a'+(i/676)%26))
	}
	err := x.Allocate(names)
	if err == nil || !strings.Contains(err.Error(), "no free xid") {
		t.Fatalf("exhaustion: %v", err)
	}
	if len(x.Snapshot()) != MaxXID {
		t.Fatalf("allocated %d, want %d", len(x.Snapshot()), MaxXID)
	}
}

func FuzzLoadCache(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "c.json")
	SaveCache(path, &core.NodeState{Version: "v", NodeID: 1})
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add([]byte(`{"format":1,"sha256":"","state":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(p, data, 0o600)
		st, _, err := LoadCache(p)
		if err == nil && st.Version == "" {
			t.Fatal("accepted a state without a version")
		}
	})
}
