package dev

import (
	"bytes"
	"github.com/planetlab/pl/internal/node/sensors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/dev/wan"
)

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/pl":          "/usr/bin/pl",
		"a b":                  "'a b'",
		"it's":                 `'it'\''s'`,
		"":                     "''",
		"hostname; ps":         "'hostname; ps'",
		"user@x.example.org":   "user@x.example.org",
		"PL_CONFIG_DIR=/tmp/x": "PL_CONFIG_DIR=/tmp/x",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
		// What sh makes of it is the original word.
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil || string(out) != in {
			t.Errorf("sh reads %s as %q (%v), want %q", shellQuote(in), out, err, in)
		}
	}
}

func TestInvokerCommand(t *testing.T) {
	user := invoker{uid: 1000, gid: 1000, sudo: true}
	root := invoker{uid: -1, gid: -1}
	env := []string{"PL_CONFIG_DIR=/d/admin cli"}
	for _, tc := range []struct {
		iv   invoker
		root bool
		env  []string
		want string
	}{
		{user, true, env, "sudo env PL_CONFIG_DIR='/d/admin cli' /b/pl slice list"},
		{root, true, env, "PL_CONFIG_DIR='/d/admin cli' /b/pl slice list"},
		{user, false, env, "PL_CONFIG_DIR='/d/admin cli' /b/pl slice list"},
		{user, true, nil, "sudo /b/pl slice list"},
		{user, false, nil, "/b/pl slice list"},
	} {
		if got := tc.iv.command(tc.root, tc.env, "/b/pl", "slice", "list"); got != tc.want {
			t.Errorf("%+v root=%v: %s, want %s", tc.iv, tc.root, got, tc.want)
		}
	}
}

func TestCurrentInvoker(t *testing.T) {
	t.Setenv("SUDO_UID", "1000")
	t.Setenv("SUDO_GID", "100")
	if iv := currentInvoker(); iv != (invoker{1000, 100, true}) {
		t.Errorf("through sudo: %+v", iv)
	}
	t.Setenv("SUDO_UID", "0")
	if iv := currentInvoker(); iv.sudo {
		t.Errorf("sudo from root: %+v", iv)
	}
	t.Setenv("SUDO_UID", "")
	if iv := currentInvoker(); iv.sudo || iv.uid != -1 {
		t.Errorf("no sudo: %+v", iv)
	}
}

// Every command the summary prints names the pl binary by its absolute
// path and carries sudo exactly when it needs root (issue 9.9).
func TestSummaryCommandsWorkAsPrinted(t *testing.T) {
	plan, err := wan.NewPlan(wan.Config{Prefix: wan.DefaultPrefix, Host: PLCSite.Location, Sites: wanSites(DemoSites), Nodes: 2, Overhead: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := &Planet{
		Config: Config{Binary: "/home/u/src/pl/bin/pl", DataDir: "/tmp/pl-dev-1", ID: "t1"},
		Plan:   plan,
		PLCURL: "https://10.99.0.1:8443", GENIURL: "https://10.99.0.1:12346/", Fingerprint: "ab12", AdminEmail: AdminEmail, AdminPWFile: "/tmp/pl-dev-1/admin-password",
		Demo:    &Demo{Slice: "princeton_demo", Port: DemoPort, User: "user@princeton.example.org", PI: "pi@princeton.example.org", PWFile: "/tmp/pl-dev-1/demo-password", KeyFile: "/tmp/pl-dev-1/id_ed25519"},
		rec:     &Record{TempData: true},
		invoker: invoker{uid: 1000, gid: 1000, sudo: true},
	}
	for _, np := range plan.NodePlans {
		p.Nodes = append(p.Nodes, &Node{NodePlan: np, Hostname: np.Name + ".example.org"})
	}
	if ":"+SensorPort != sensors.DefaultAddr {
		t.Errorf("dev sensor port %s is not the node's default %s", SensorPort, sensors.DefaultAddr)
	}
	var b bytes.Buffer
	p.PrintSummary(&b)
	out := b.String()
	t.Logf("summary:\n%s", out)
	for _, want := range []string{
		"`sudo /home/u/src/pl/bin/pl dev down --id t1`",
		"sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /home/u/src/pl/bin/pl slice list",
		"\n  /home/u/src/pl/bin/pl login https://10.99.0.1:8443 ",
		"\n  /home/u/src/pl/bin/pl exec princeton_demo -i /tmp/pl-dev-1/id_ed25519 -- uname -a\n",
		"\n  sudo ip netns exec ",
		"\n  ssh -i /tmp/pl-dev-1/id_ed25519 ",
		"\n  curl http://" + p.Nodes[0].Addr.String() + ":3100/node/load\n",
		// The planet table and an outage to try (issue 11).
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /home/u/src/pl/bin/pl top nodes\n",
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /home/u/src/pl/bin/pl node show " + p.Nodes[0].Hostname + "\n",
		"\n  sudo /home/u/src/pl/bin/pl dev stop " + p.Nodes[1].Name + " --id t1\n",
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /home/u/src/pl/bin/pl top nodes --where '!up'\n",
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /home/u/src/pl/bin/pl monitor notices\n",
		"\n  sudo /home/u/src/pl/bin/pl dev start " + p.Nodes[1].Name + " --id t1   # it reports again and is up\n",
		"after 20s without a report",
		// Accountability to try (issue 12).
		"\nTry accountability: the demo sliver on " + p.Nodes[len(p.Nodes)-1].Name + " sends TCP and UDP to " + p.Nodes[0].Addr.String() + ";",
		"@" + p.Nodes[len(p.Nodes)-1].Addr.String() + " 'busybox wget -q -O - http://" + p.Nodes[0].Addr.String() + ":8080/; busybox nslookup pl-audit.example " + p.Nodes[0].Addr.String() + "'\n",
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /home/u/src/pl/bin/pl audit who " + p.Nodes[0].Addr.String() + " --since 10m\n",
		// The portal and the demo login (issue 13).
		"\nportal     https://10.99.0.1:8443/  ",
		"\nmailbox    https://10.99.0.1:8443/mailbox  ",
		"\nPortal: log in at https://10.99.0.1:8443/login as user@princeton.example.org (or the site's PI pi@princeton.example.org) with the password in /tmp/pl-dev-1/demo-password;\n  the demo slice and its nodes on the world map: https://10.99.0.1:8443/slices/princeton_demo\n",
		// The GENI aggregate (issue 15).
		"\nGENI AM    https://10.99.0.1:12346/  ",
		"(the aggregate, AM API v3, client certificates; authority t1.pl-dev.example.org; docs/geni.md)\n",
		"\n  /home/u/src/pl/bin/pl geni cert   #",
		"\n  /home/u/src/pl/bin/pl geni credential princeton_demo -o princeton_demo.cred   # slice urn:publicid:IDN+t1.pl-dev.example.org+slice+princeton_demo\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "pl" {
			t.Errorf("a command names pl, not found on PATH: %q", l)
		}
	}
}

// With --reservable, the summary tells how to lease the last node for the
// demo slice, and the demo commands (ssh, curl, accountability) use the
// nodes that keep running without a lease.
func TestSummaryReservable(t *testing.T) {
	plan, err := wan.NewPlan(wan.Config{Prefix: wan.DefaultPrefix, Host: PLCSite.Location, Sites: wanSites(DemoSites), Nodes: 3, Overhead: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := &Planet{
		Config: Config{Binary: "/bin/pl", DataDir: "/tmp/pl-dev-1", Reservable: true},
		Plan:   plan,
		PLCURL: "https://10.99.0.1:8443", Fingerprint: "ab12", AdminEmail: AdminEmail, AdminPWFile: "/tmp/pl-dev-1/admin-password",
		Demo:    &Demo{Slice: "princeton_demo", Port: DemoPort, User: "user@princeton.example.org", PWFile: "/tmp/pl-dev-1/demo-password", KeyFile: "/tmp/pl-dev-1/id_ed25519"},
		rec:     &Record{TempData: true},
		invoker: invoker{uid: 1000, gid: 1000, sudo: true},
	}
	for _, np := range plan.NodePlans {
		p.Nodes = append(p.Nodes, &Node{NodePlan: np, Hostname: np.Name + ".example.org"})
	}
	p.Reservable = p.Nodes[2]
	var b bytes.Buffer
	p.PrintSummary(&b)
	out := b.String()
	t.Logf("summary:\n%s", out)
	res, last := p.Nodes[2], p.Nodes[1]
	for _, want := range []string{
		"\nTry a lease: " + res.Hostname + " is reservable; the demo sliver there is frozen until the slice holds a lease (rounded to 1m):\n",
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /bin/pl lease add princeton_demo " + res.Hostname + " --from +0s --until +30m\n",
		"\n  sudo env PL_CONFIG_DIR=/tmp/pl-dev-1/admin-cli /bin/pl lease list --node " + res.Hostname + "\n",
		"\n  curl http://" + res.Addr.String() + ":8080/   # answers within a minute",
		"\n  curl http://" + last.Addr.String() + ":8080/\n",
		"\nTry accountability: the demo sliver on " + last.Name + " sends",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(out, "@"+res.Addr.String()) {
		t.Errorf("a demo command logs into the reservable node's frozen sliver")
	}
	p.Reservable = nil
	b.Reset()
	p.PrintSummary(&b)
	if strings.Contains(b.String(), "Try a lease") {
		t.Error("a lease hint without a reservable node")
	}
}

func TestReservableNeedsTwoNodes(t *testing.T) {
	c := Config{Nodes: 1, Reservable: true}
	if err := c.defaults(); err == nil || !strings.Contains(err.Error(), "--reservable with 1 node: want at least 2") {
		t.Fatalf("%v", err)
	}
}
