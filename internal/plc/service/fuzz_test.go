package service

import (
	"strings"
	"testing"
)

func TestParseSSHKey(t *testing.T) {
	k := sshKey(t)
	p, err := ParseSSHKey("  " + k + "\n")
	if err != nil || p.Type != "ssh-ed25519" || p.Line != k || !strings.HasPrefix(k, p.Material) {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "ssh-ed25519", k + "\n" + k, `command="x" ` + k, "ssh-dss AAAAB3NzaC1kc3MAAACBAP"} {
		if _, err := ParseSSHKey(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseSSHKey(f *testing.F) {
	f.Add(sshKey(f))
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x")
	f.Add("ecdsa-sha2-nistp256 AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSSHKey(s)
		if err != nil {
			return
		}
		again, err := ParseSSHKey(k.Line)
		if err != nil || again.Material != k.Material {
			t.Fatalf("reparse %q: %+v %v", k.Line, again, err)
		}
	})
}

func TestParsePortRange(t *testing.T) {
	ok := map[string]PortRange{"tcp/80": {"tcp", 80, 80}, "udp/5000-5010": {"udp", 5000, 5010}, " tcp/1-65535 ": {"tcp", 1, 65535}}
	for s, want := range ok {
		if got, err := ParsePortRange(s); err != nil || got != want {
			t.Errorf("%q: %+v %v", s, got, err)
		}
	}
	for _, s := range []string{"", "80", "sctp/80", "tcp/0", "tcp/70000", "tcp/10-5", "tcp/a", "tcp/1-", "udp/-3"} {
		if _, err := ParsePortRange(s); err == nil {
			t.Errorf("accepted %q", s)
		}
	}
	a, b := PortRange{"tcp", 1, 10}, PortRange{"tcp", 10, 20}
	if !a.overlaps(b) || a.overlaps(PortRange{"udp", 1, 10}) || a.overlaps(PortRange{"tcp", 11, 12}) {
		t.Fatal("overlaps")
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"tcp/80", "udp/5000-5010", "tcp/-1", "x/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.From < 1 || r.To > 65535 || r.From > r.To || (r.Proto != "tcp" && r.Proto != "udp") {
			t.Fatalf("%q -> %+v", s, r)
		}
	})
}
