package nodecmd

import (
	"context"

	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/nmapi"
)

// callAs calls the local API at socket as host uid: the connecting
// thread's effective uid is switched for the connect only, so the kernel
// records uid as the peer (SO_PEERCRED), as it does for a process in a
// sliver whose uid range holds uid.
func callAs(uid uint32, socket, method string, args, out any) error {
	dial := func(ctx context.Context) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			runtime.LockOSThread() // the thread dies with the goroutine: never reused with a changed uid
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
				ch <- res{nil, e}
				return
			}
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				err = unix.Connect(fd, &unix.SockaddrUnix{Name: socket})
			}
			if err != nil {
				ch <- res{nil, err}
				return
			}
			f := osFile(fd)
			c, err := net.FileConn(f)
			f.Close()
			ch <- res{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
	return nmapi.CallWith(context.Background(), dial, method, args, out)
}

// The local API from slivers: the socket appears in slivers with nm_api=1
// only; a controller slice creates and destroys a delegated slice's
// sliver; another slice can neither control it nor pass for the
// controller (its uid says who it is); a uid of no sliver is refused; a
// loan changes the live cgroup and HTB values of both slivers and is
// undone when it ends.
func TestLocalAPIFromSlivers(t *testing.T) {
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	l.apiSocket = filepath.Join(filepath.Dir(l.state), "api.sock") // a directory every uid may traverse
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })
	dlg := liveSliver("pltest_dlg", 3, "delegations", "pltest_ctl")
	dlg.Instantiation = "delegated"
	plc.Set([]core.Sliver{
		liveSliver("pltest_ctl", 1, "nm_api", "1", "cpu_share", "4", "net_max_rate", "20000"),
		liveSliver("pltest_oth", 2, "net_max_rate", "5000"),
		dlg,
	})
	l.eventually("slivers running", 60*time.Second, func() bool { return l.running("pltest_ctl") && l.running("pltest_oth") })
	if out, err := l.exec("pltest_ctl", "sh", "-c", "test -S /run/pl/api.sock && echo socket"); err != nil || strings.TrimSpace(out) != "socket" {
		t.Fatalf("no API socket in the nm_api sliver: %q %v", out, err)
	}
	if out, _ := l.exec("pltest_oth", "sh", "-c", "test -e /run/pl/api.sock && echo socket"); strings.TrimSpace(out) != "" {
		t.Fatalf("API socket in a sliver without nm_api: %q", out)
	}
	uidOf := func(name string) uint32 { return agent.UIDBase(l.xid(name)) + 1000 } // the slice's account in the sliver
	sock := l.apiSocket
	ctl, oth := uidOf("pltest_ctl"), uidOf("pltest_oth")

	var rec agent.RecordResult
	if err := callAs(ctl, sock, "GetRecord", struct{}{}, &rec); err != nil || rec.Sliver.Name != "pltest_ctl" || rec.RSpec.CPUShare != 4 {
		t.Fatalf("GetRecord as pltest_ctl: %v %+v", err, rec)
	}
	// No impersonation: the uid decides, whatever the request says.
	if err := callAs(oth, sock, "GetRecord", map[string]string{"slice": "pltest_ctl"}, &rec); core.ErrorCode(err) != core.Invalid {
		t.Fatalf("GetRecord with a claimed slice: %v", err)
	}
	if err := callAs(oth, sock, "GetRecord", struct{}{}, &rec); err != nil || rec.Sliver.Name != "pltest_oth" {
		t.Fatalf("GetRecord as pltest_oth: %v %+v", err, rec)
	}
	for _, c := range []struct {
		uid          uint32
		method, want string
		code         core.Code
	}{
		{oth, "Create", "slice pltest_oth may not control slice pltest_dlg", core.Forbidden},
		{ctl, "Destroy", "", ""}, // nothing to destroy yet: still fine
		{12345, "Create", "uid 12345 is not a sliver's", core.Forbidden},
	} {
		err := callAs(c.uid, sock, c.method, agent.SliceArgs{Slice: "pltest_dlg"}, nil)
		if c.code == "" && err != nil || c.code != "" && (core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s as uid %d: %v, want %s %q", c.method, c.uid, err, c.code, c.want)
		}
	}
	if err := callAs(ctl, sock, "Create", agent.SliceArgs{Slice: "pltest_oth"}, nil); core.ErrorCode(err) != core.Forbidden {
		t.Errorf("pltest_ctl creating pltest_oth: %v", err)
	}
	if l.running("pltest_dlg") {
		t.Fatal("delegated sliver exists before Create")
	}
	if err := callAs(ctl, sock, "Create", agent.SliceArgs{Slice: "pltest_dlg"}, nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
	took := l.eventually("delegated sliver created through the API", 60*time.Second, func() bool { return l.running("pltest_dlg") })
	t.Logf("Create -> delegated sliver running: %v", took)
	if err := callAs(oth, sock, "Destroy", agent.SliceArgs{Slice: "pltest_dlg"}, nil); core.ErrorCode(err) != core.Forbidden {
		t.Fatalf("pltest_oth destroying pltest_dlg: %v", err)
	}
	if err := callAs(ctl, sock, "Destroy", agent.SliceArgs{Slice: "pltest_dlg"}, nil); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	l.eventually("delegated sliver destroyed through the API", 60*time.Second, func() bool { return l.xid("pltest_dlg") == 0 })

	// A loan: pltest_ctl lends cpu_share 3 and 8000 kbit/s of ceiling to
	// pltest_oth for 4 s.
	htb := func(name string) [2]int64 {
		c, err := l.node.Net.ClassCeilings()
		if err != nil {
			t.Fatal(err)
		}
		return c[l.xid(name)]
	}
	shares := func(name string) string { return l.cgroupFile("cpu", name, "cpu.shares") }
	if shares("pltest_ctl") != "4096" || shares("pltest_oth") != "1024" || htb("pltest_ctl")[1] != 20000 || htb("pltest_oth")[1] != 5000 {
		t.Fatalf("before the loan: shares %s %s, htb %v %v", shares("pltest_ctl"), shares("pltest_oth"), htb("pltest_ctl"), htb("pltest_oth"))
	}
	until := time.Now().Add(4 * time.Second).Unix()
	loan := rspec.Loan{To: "pltest_oth", Amount: rspec.RSpec{CPUShare: 3, NetMaxKbit: 8000}, Until: until}
	if err := callAs(oth, sock, "SetLoans", agent.LoanArgs{Slice: "pltest_ctl", Loans: []rspec.Loan{loan}}, nil); core.ErrorCode(err) != core.Forbidden {
		t.Fatalf("pltest_oth setting pltest_ctl's loans: %v", err)
	}
	big := loan
	big.Amount.CPUShare = 4 // it keeps 1
	if err := callAs(ctl, sock, "SetLoans", agent.LoanArgs{Slice: "pltest_ctl", Loans: []rspec.Loan{big}}, nil); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "cpu_share") {
		t.Fatalf("lending more than held: %v", err)
	}
	if err := callAs(ctl, sock, "SetLoans", agent.LoanArgs{Slice: "pltest_ctl", Loans: []rspec.Loan{loan}}, nil); err != nil {
		t.Fatalf("SetLoans: %v", err)
	}
	took = l.eventually("loan applied live", 30*time.Second, func() bool {
		return shares("pltest_ctl") == "1024" && shares("pltest_oth") == "4096" && htb("pltest_ctl")[1] == 12000 && htb("pltest_oth")[1] == 13000
	})
	t.Logf("SetLoans -> live cgroup and HTB values: %v", took)
	var loans []rspec.Loan
	if err := callAs(oth, sock, "GetLoans", agent.SliceArgs{Slice: "pltest_oth"}, &loans); err != nil || len(loans) != 0 {
		t.Errorf("pltest_oth's own loans: %v %v", loans, err)
	}
	l.eventually("loan undone at its end", 30*time.Second, func() bool {
		return shares("pltest_ctl") == "4096" && shares("pltest_oth") == "1024" && htb("pltest_ctl")[1] == 20000 && htb("pltest_oth")[1] == 5000
	})
	if time.Now().Unix() < until {
		t.Fatal("loan undone before its end")
	}

}

func osFile(fd int) *os.File { return os.NewFile(uintptr(fd), "nmapi") }
