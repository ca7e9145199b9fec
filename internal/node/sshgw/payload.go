package sshgw

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// This file decodes the request and channel payloads the gateway accepts
// from clients (RFC 4254). Every decoder rejects malformed or oversized input
// with an error naming the request; none of them panics (see the fuzz tests).

// Size limits on client-provided strings. OpenSSH itself has similar ones.
const (
	maxTermLen    = 64
	maxEnvNameLen = 64
	maxEnvValLen  = 1024
	maxCommandLen = 256 << 10 // ARG_MAX-ish: 256 KiB
	maxModesLen   = 1024      // 5 bytes per mode, ~60 defined modes
	maxDimension  = 10000     // columns/rows/pixels above this are nonsense
	maxHostLen    = 255
)

// ptyRequest is the payload of "pty-req" (RFC 4254 §6.2).
type ptyRequest struct {
	Term     string
	Columns  uint32
	Rows     uint32
	Width    uint32
	Height   uint32
	Modelist string
}

// windowChange is the payload of "window-change" (RFC 4254 §6.7).
type windowChange struct {
	Columns uint32
	Rows    uint32
	Width   uint32
	Height  uint32
}

// envRequest is the payload of "env" (RFC 4254 §6.4).
type envRequest struct {
	Name  string
	Value string
}

// execRequest is the payload of "exec" (RFC 4254 §6.5).
type execRequest struct {
	Command string
}

// subsystemRequest is the payload of "subsystem" (RFC 4254 §6.5).
type subsystemRequest struct {
	Name string
}

// signalRequest is the payload of "signal" (RFC 4254 §6.9).
type signalRequest struct {
	Signal string
}

// directTCPIP is the extra data of a "direct-tcpip" channel open
// (RFC 4254 §7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// exitStatus and exitSignal are the requests the gateway sends when a
// process ends (RFC 4254 §6.10).
type exitStatus struct {
	Status uint32
}

type exitSignal struct {
	Signal     string
	CoreDumped bool
	Message    string
	Lang       string
}

// termMode is one decoded terminal mode of a pty-req.
type termMode struct {
	Op  uint8
	Val uint32
}

func parsePtyRequest(b []byte) (ptyRequest, error) {
	var r ptyRequest
	if err := ssh.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("pty-req: malformed payload: %w", err)
	}
	if len(r.Term) > maxTermLen || !printable(r.Term) {
		return r, fmt.Errorf("pty-req: bad TERM %.64q", r.Term)
	}
	if err := checkDims(r.Columns, r.Rows, r.Width, r.Height); err != nil {
		return r, fmt.Errorf("pty-req: %w", err)
	}
	if len(r.Modelist) > maxModesLen {
		return r, fmt.Errorf("pty-req: terminal modes too long (%d bytes)", len(r.Modelist))
	}
	return r, nil
}

func parseWindowChange(b []byte) (windowChange, error) {
	var r windowChange
	if err := ssh.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("window-change: malformed payload: %w", err)
	}
	if err := checkDims(r.Columns, r.Rows, r.Width, r.Height); err != nil {
		return r, fmt.Errorf("window-change: %w", err)
	}
	return r, nil
}

func checkDims(cols, rows, w, h uint32) error {
	for _, d := range []struct {
		name string
		v    uint32
	}{{"columns", cols}, {"rows", rows}, {"width", w}, {"height", h}} {
		if d.v > maxDimension {
			return fmt.Errorf("%s %d out of range", d.name, d.v)
		}
	}
	return nil
}

func parseEnv(b []byte) (envRequest, error) {
	var r envRequest
	if err := ssh.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("env: malformed payload: %w", err)
	}
	if r.Name == "" || len(r.Name) > maxEnvNameLen || strings.ContainsAny(r.Name, "=\x00") {
		return r, fmt.Errorf("env: bad variable name %.64q", r.Name)
	}
	if len(r.Value) > maxEnvValLen || strings.ContainsRune(r.Value, 0) {
		return r, fmt.Errorf("env: bad value for %s", r.Name)
	}
	return r, nil
}

// envAllowed reports whether a client may set the variable: the locale and
// the terminal type, as OpenSSH's default AcceptEnv.
func envAllowed(name string) bool {
	return name == "LANG" || name == "TERM" || name == "LANGUAGE" || strings.HasPrefix(name, "LC_")
}

func parseExec(b []byte) (execRequest, error) {
	var r execRequest
	if err := ssh.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("exec: malformed payload: %w", err)
	}
	if len(r.Command) > maxCommandLen {
		return r, fmt.Errorf("exec: command too long (%d bytes)", len(r.Command))
	}
	if strings.ContainsRune(r.Command, 0) {
		return r, fmt.Errorf("exec: command contains a NUL byte")
	}
	return r, nil
}

func parseSubsystem(b []byte) (subsystemRequest, error) {
	var r subsystemRequest
	if err := ssh.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("subsystem: malformed payload: %w", err)
	}
	if len(r.Name) > 64 || !printable(r.Name) {
		return r, fmt.Errorf("subsystem: bad name %.64q", r.Name)
	}
	return r, nil
}

func parseSignal(b []byte) (syscall.Signal, error) {
	var r signalRequest
	if err := ssh.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("signal: malformed payload: %w", err)
	}
	sig, ok := signalsByName[r.Signal]
	if !ok {
		return 0, fmt.Errorf("signal: unknown signal %.32q", r.Signal)
	}
	return sig, nil
}

func parseDirectTCPIP(b []byte) (directTCPIP, error) {
	var r directTCPIP
	if err := ssh.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("direct-tcpip: malformed payload: %w", err)
	}
	if r.Host == "" || len(r.Host) > maxHostLen || !printable(r.Host) {
		return r, fmt.Errorf("direct-tcpip: bad host %.64q", r.Host)
	}
	if r.Port == 0 || r.Port > 65535 {
		return r, fmt.Errorf("direct-tcpip: port %d out of range", r.Port)
	}
	return r, nil
}

// parseModes decodes the encoded terminal modes of a pty-req (RFC 4254
// §8): opcode bytes each followed by a uint32, ended by TTY_OP_END (0) or
// by the first opcode >= 160, which per the RFC stops parsing.
func parseModes(s string) ([]termMode, error) {
	b := []byte(s)
	var out []termMode
	for len(b) > 0 {
		op := b[0]
		if op == 0 || op >= 160 {
			return out, nil
		}
		if len(b) < 5 {
			return nil, fmt.Errorf("pty-req: truncated terminal mode %d", op)
		}
		out = append(out, termMode{Op: op, Val: binary.BigEndian.Uint32(b[1:5])})
		b = b[5:]
	}
	return out, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// signalsByName are the signal names of RFC 4254 §6.10 (without "SIG").
var signalsByName = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT,
	"ALRM": syscall.SIGALRM,
	"FPE":  syscall.SIGFPE,
	"HUP":  syscall.SIGHUP,
	"ILL":  syscall.SIGILL,
	"INT":  syscall.SIGINT,
	"KILL": syscall.SIGKILL,
	"PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV,
	"TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// signalName returns the RFC 4254 name of sig, or "" for a signal the RFC
// does not name (callers then report an exit status instead).
func signalName(sig syscall.Signal) string {
	for n, s := range signalsByName {
		if s == sig {
			return n
		}
	}
	return ""
}
