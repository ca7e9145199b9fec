// Command traceroutesvr is the server of the parallel traceroute service
// (package examples/traceroute): run in a slice on every node, it answers
// each request on its port with the path from its node to the target,
// traced with the sliver's raw sockets. The slice reserves the port (slice
// tag ports, tcp/<port>) so the node forwards it to the sliver; see
// docs/tutorial.md.
//
//	traceroutesvr -p 33434
package main

import (
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"time"

	flag "github.com/spf13/pflag"

	traceroute "github.com/planetlab/pl/examples/traceroute"
)

func main() {
	port := flag.IntP("port", "p", 0, "TCP port to answer on (reserve it for the slice: tcp/<port>)")
	parallel := flag.Int("parallel", 4, "traces at once; more requests are answered \"busy\"")
	wait := flag.Duration("wait", 2*time.Second, "how long one probe round waits for its answers")
	name := flag.String("name", "", "server name in answers (default: the host name, i.e. the node's)")
	flag.Parse()
	if *port < 1 || *port > 65535 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: traceroutesvr -p <port> [--parallel N] [--wait 2s] [--name N]")
		os.Exit(2)
	}
	if *name == "" {
		h, err := os.Hostname()
		if err != nil {
			log.Fatalf("traceroutesvr: host name: %v", err)
		}
		*name = h
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		log.Fatalf("traceroutesvr: %v", err)
	}
	logger := log.New(os.Stderr, "traceroutesvr: ", log.LstdFlags)
	logger.Printf("%s answering on %v", *name, ln.Addr())
	s := &traceroute.Server{Name: *name, Tracer: traceroute.Tracer{Wait: *wait}, MaxParallel: *parallel, Log: logger}
	log.Fatal(s.Serve(ln))
}
