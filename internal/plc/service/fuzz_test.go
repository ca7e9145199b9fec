package service

import (
	"encoding/base64"
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

func TestParsePersonKey(t *testing.T) {
	k := sshKey(t)
	p, err := ParsePersonKey(k)
	if err != nil || !p.Usable || p.Reason != "" || p.Line != k {
		t.Fatalf("%+v %v", p, err)
	}
	text := "ssh-rsa " + base64.StdEncoding.EncodeToString([]byte("hello")) + " me@host"
	p, err = ParsePersonKey(" " + text + " ")
	if err != nil || p.Usable || p.Reason == "" || p.Line != text || p.Material != strings.Fields(text)[0]+" "+strings.Fields(text)[1] {
		t.Fatalf("%+v %v", p, err)
	}
	// The original's pattern: anything before the type, base64 after it.
	for _, ok := range []string{"ssh-dss AAAAB3NzaC1kc3MAAACBAP", "from=x ssh-rsa QUJD", "xssh-rsa   QUJD=", "ssh-rsa QUJD comment with spaces"} {
		if p, err := ParsePersonKey(ok); err != nil || p.Usable {
			t.Errorf("%q: %+v %v", ok, p, err)
		}
	}
	for _, bad := range []string{"", "ssh-rsa", "ssh-rsa QUJD!", "ssh-rsa\tQUJD", "ssh-rsa QUJD\nssh-rsa QUJD", "ecdsa-sha2-nistp256 QUJD", "ssh-ed25519 QUJD"} {
		if p, err := ParsePersonKey(bad); err == nil {
			t.Errorf("accepted %q: %+v", bad, p)
		}
	}
}

// FuzzParsePersonKey: an accepted key parses again to the same verdict
// and material, and only usable keys are OpenSSH keys.
func FuzzParsePersonKey(f *testing.F) {
	f.Add(sshKey(f))
	f.Add("ssh-rsa QUJD user@host")
	f.Add("ssh-dss AAAAB3NzaC1kc3MAAACBAP")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePersonKey(s)
		if err != nil {
			return
		}
		again, err := ParsePersonKey(k.Line)
		if err != nil || again.Material != k.Material || again.Usable != k.Usable {
			t.Fatalf("reparse %q: %+v %v", k.Line, again, err)
		}
		if _, err := ParseSSHKey(k.Line); (err == nil) != k.Usable || k.Usable == (k.Reason != "") {
			t.Fatalf("%q: usable %v reason %q strict %v", s, k.Usable, k.Reason, err)
		}
	})
}
