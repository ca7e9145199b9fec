package sshgw

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// hangupGroup sends SIGHUP to the process group of a session's process, as
// the kernel does when OpenSSH closes a session's terminal: processes that
// ignore the signal (nohup) or left the group (setsid, a shell's job-control
// jobs) keep running. The session's process is the child of runc exec that
// leads a group (runc makes it a session leader), or, with a runtime that
// runs it directly, starter itself. It reports whether a group was found
// and signalled; never the gateway's own group.
func hangupGroup(starter int) bool {
	own := syscall.Getpgrp()
	for _, pid := range append(childrenOf(starter), starter) {
		if pgid, err := unix.Getpgid(pid); err == nil && pgid == pid && pgid != own {
			return unix.Kill(-pgid, unix.SIGHUP) == nil
		}
	}
	return false
}

// childrenOf lists the children of pid from /proc/<pid>/task/*/children.
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
