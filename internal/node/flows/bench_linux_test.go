package flows

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecorderCPU sends new UDP flows from a sliver at a fixed rate
// (1,000/s, each to a new port; conntrack's UDP timeout set to 1 s so
// DESTROY events follow) for 5 s, first without the recorder (baseline:
// the generator alone), then with it, and reports the process's CPU in
// each phase; the difference is the recorder's, as % of one core.
func BenchmarkRecorderCPU(b *testing.B) {
	for _, rate := range []int{1000, 10000} {
		b.Run(strconv.Itoa(rate)+"/s", func(b *testing.B) { benchRecorder(b, rate) })
	}
}

func benchRecorder(b *testing.B, rate int) {
	fn := newFlowNetB(b)
	if err := inNetNS(fn.node, func() error {
		return os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_udp_timeout", []byte("1"), 0o644)
	}); err != nil {
		b.Fatal(err)
	}
	var u net.PacketConn
	if err := inNetNS(fn.sliver, func() (err error) { u, err = net.ListenPacket("udp4", ":0"); return err }); err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	const d = 5 * time.Second
	port := 10000
	gen := func() int {
		n := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(d)
		msg := []byte("x")
		for time.Now().Before(end) {
			<-tick.C
			for i := 0; i < rate/100; i++ {
				port++
				if port > 60000 {
					port = 10000
				}
				if _, err := u.WriteTo(msg, &net.UDPAddr{IP: net.ParseIP(peerAddr), Port: port}); err == nil {
					n++
				}
			}
		}
		return n
	}
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		sentBase := gen()
		base := cpuTime() - c0
		time.Sleep(2 * time.Second) // let those flows expire

		store, err := OpenStore(StoreConfig{Path: filepath.Join(b.TempDir(), "flows.db")})
		if err != nil {
			b.Fatal(err)
		}
		rec, err := NewRecorder(RecorderConfig{Store: store, NetNS: fn.node})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rec.Run(ctx) }()
		time.Sleep(500 * time.Millisecond)
		c1 := cpuTime()
		sent := gen()
		with := cpuTime() - c1
		time.Sleep(2 * time.Second)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		st := rec.Stats()
		store.Close()
		b.ReportMetric(float64(base)/float64(d)*100, "%core-generator(baseline)")
		b.ReportMetric(float64(with)/float64(d)*100, "%core-with-recorder")
		b.ReportMetric(float64(with-base)/float64(d)*100, "%core-recorder")
		b.Logf("%d/s: flows sent %d (baseline run %d); recorder: %d events, %d records written, %d overruns, %d dumps",
			rate, sent, sentBase, st.Events, st.Written, st.Overruns, st.Dumps)
	}
}
