package flows

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestRecorderDowntime measures what the flow log loses while the node
// manager (and so the recorder) is down. On start the recorder reads the
// kernel's whole table, so a flow that starts and ends during the outage
// is recovered as long as its conntrack entry is still there (TCP: 120 s
// in TIME_WAIT; UDP: 30 s by default); one whose entry expired before the
// restart is lost. Both cases are made here: the second by shortening the
// node namespace's timeouts to 1 s and staying down 3 s.
func TestRecorderDowntime(t *testing.T) {
	fn := newFlowNet(t)
	store, err := OpenStore(StoreConfig{Path: filepath.Join(t.TempDir(), "flows.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, stop := startRecorder(t, fn, store)
	stop()

	const n = 20
	// One TCP server on the peer for both phases' short connections.
	var tl net.Listener
	in(t, fn.peer, func() (err error) { tl, err = net.Listen("tcp4", peerAddr+":0"); return err })
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() { buf := make([]byte, 64); c.Read(buf); c.Close() }()
		}
	}()
	tcpPort := uint16(tl.Addr().(*net.TCPAddr).Port)
	// flowsWhileDown makes n short TCP connections to tcpPort and n UDP
	// datagrams to n ports from udpBase, all ended before it returns.
	flowsWhileDown := func(udpBase int) {
		t.Helper()
		for i := 0; i < n; i++ {
			var c net.Conn
			in(t, fn.sliver, func() (err error) {
				c, err = net.DialTimeout("tcp4", net.JoinHostPort(peerAddr, strconv.Itoa(int(tcpPort))), 5*time.Second)
				return err
			})
			c.Write([]byte("hello"))
			c.Close()
			var u net.Conn
			in(t, fn.sliver, func() (err error) {
				u, err = net.Dial("udp4", net.JoinHostPort(peerAddr, strconv.Itoa(udpBase+i)))
				return err
			})
			u.Write([]byte("x"))
			u.Close()
		}
		time.Sleep(300 * time.Millisecond) // FINs and ACKs
	}
	count := func(proto uint8, lo, hi int) int {
		k := 0
		for _, r := range query(t, store, proto, 0) {
			if p := int(r.Remote.Port()); p >= lo && p <= hi {
				k++
			}
		}
		return k
	}

	// Phase 1: a short outage; every entry is still in the table.
	flowsWhileDown(9200)
	_, stop = startRecorder(t, fn, store)
	stop()
	tcp1, udp1 := count(6, int(tcpPort), int(tcpPort)), count(17, 9200, 9200+n-1)
	if tcp1 != n || udp1 != n {
		t.Errorf("short outage: recovered %d of %d TCP and %d of %d UDP flows, want all", tcp1, n, udp1, n)
	}

	// Phase 2: entries expire (1 s timeouts) before the recorder is back.
	for name, v := range map[string]string{
		"nf_conntrack_tcp_timeout_time_wait": "1", "nf_conntrack_tcp_timeout_close": "1",
		"nf_conntrack_tcp_timeout_fin_wait": "1", "nf_conntrack_tcp_timeout_last_ack": "1",
		"nf_conntrack_udp_timeout": "1", "nf_conntrack_udp_timeout_stream": "1",
	} {
		in(t, fn.node, func() error { return os.WriteFile("/proc/sys/net/netfilter/"+name, []byte(v), 0) })
	}
	flowsWhileDown(9300)
	time.Sleep(3 * time.Second)
	_, stop = startRecorder(t, fn, store)
	stop()
	tcp2, udp2 := count(6, int(tcpPort), int(tcpPort))-tcp1, count(17, 9300, 9300+n-1)
	if tcp2 > n || udp2 > n {
		t.Errorf("long outage: %d TCP and %d UDP records of %d flows each", tcp2, udp2, n)
	}
	t.Logf("BENCH flows that started and ended while the recorder was down: short outage (entries still in conntrack): %d/%d TCP, %d/%d UDP recovered; entries expired before the restart: %d/%d TCP, %d/%d UDP recovered (lost: %d, %d)",
		tcp1, n, udp1, n, tcp2, n, udp2, n, n-tcp2, n-udp2)
}
