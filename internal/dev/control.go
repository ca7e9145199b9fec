package dev

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/dev/wan"
)

// The control socket of a running pl dev, /run/pl-dev/<instance>.sock
// (root only), takes one JSON request per connection and answers one JSON
// response: `pl dev stop|start|status` use it.

// ControlRequest asks a running pl dev to act on one of its processes.
type ControlRequest struct {
	Op   string `json:"op"`   // stop, start, status
	Name string `json:"name"` // "plc" or a node name; "" with status: all
}

// ControlResponse is the answer: the affected processes' states, or an
// error.
type ControlResponse struct {
	Error  string       `json:"error,omitempty"`
	Status []ProcStatus `json:"status,omitempty"`
}

// ControlPath is the control socket of the instance with the given id.
func ControlPath(id string) string {
	return filepath.Join(RunDir, wan.NamePrefix+id+".sock")
}

func controlPathOf(prefix string) string {
	return filepath.Join(RunDir, strings.TrimSuffix(prefix, "-")+".sock")
}

// serveControl listens on the planet's control socket.
func (p *Planet) serveControl() error {
	path := controlPathOf(p.rec.Prefix)
	os.Remove(path) // a killed run's
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	p.mu.Lock()
	p.ctl = ln
	p.mu.Unlock()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handleControl(conn)
		}
	}()
	return nil
}

func (p *Planet) handleControl(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	var req ControlRequest
	if err := json.NewDecoder(io.LimitReader(conn, 4096)).Decode(&req); err != nil {
		json.NewEncoder(conn).Encode(ControlResponse{Error: "bad request: " + err.Error()})
		return
	}
	json.NewEncoder(conn).Encode(p.control(req))
}

// control carries out one request.
func (p *Planet) control(req ControlRequest) ControlResponse {
	var st ProcStatus
	var err error
	switch req.Op {
	case "status":
		all := p.Status()
		if req.Name == "" {
			return ControlResponse{Status: all}
		}
		for _, s := range all {
			if s.Name == req.Name {
				return ControlResponse{Status: []ProcStatus{s}}
			}
		}
		_, err = p.lookup(req.Name)
		return ControlResponse{Error: err.Error()}
	case "stop":
		st, err = p.StopProc(req.Name)
	case "start":
		st, err = p.StartProc(req.Name)
	default:
		err = fmt.Errorf("unknown operation %q: want stop, start or status", req.Op)
	}
	if err != nil {
		return ControlResponse{Error: err.Error()}
	}
	return ControlResponse{Status: []ProcStatus{st}}
}

// Control sends a request to the running pl dev with the given id.
func Control(id string, req ControlRequest) (ControlResponse, error) {
	path := ControlPath(id)
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ControlResponse{}, fmt.Errorf("no pl dev running with id %q (no %s)", id, path)
		}
		return ControlResponse{}, fmt.Errorf("pl dev control socket: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return ControlResponse{}, err
	}
	var resp ControlResponse
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		return ControlResponse{}, fmt.Errorf("pl dev control socket: %w", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// PrintStatus renders process states as a table.
func PrintStatus(w io.Writer, sts []ProcStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tUP\tRESTARTS\tLAST UNREQUESTED EXIT")
	for _, s := range sts {
		pid, up := "-", "-"
		if s.PID > 0 {
			pid, up = fmt.Sprint(s.PID), time.Since(s.Since).Round(time.Second).String()
		}
		last := s.LastExit
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, pid, up, s.Restarts, last)
	}
	tw.Flush()
}
