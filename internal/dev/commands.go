package dev

import (
	"os"
	"strconv"
	"strings"
)

// invoker is the user who ran pl dev: the user behind sudo, or root
// itself. The commands pl dev prints are meant to be pasted by that user.
type invoker struct {
	uid, gid int  // -1 when pl dev was not run through sudo
	sudo     bool // the user is not root: root-only commands need sudo
}

// currentInvoker reads sudo's SUDO_UID and SUDO_GID.
func currentInvoker() invoker {
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || uid == 0 {
		return invoker{uid: -1, gid: -1}
	}
	return invoker{uid: uid, gid: gid, sudo: true}
}

// give makes files the invoker's, so the commands printed for them work
// without sudo (their password file, a key generated for them). Nothing
// happens when root ran pl dev.
func (iv invoker) give(paths ...string) error {
	if iv.uid < 0 {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, iv.uid, iv.gid); err != nil {
			return err
		}
	}
	return nil
}

// command renders a command line to paste into a shell: argv words
// quoted where needed, env assignments through env(1), and sudo in front
// when it needs root and the invoker is not root.
func (iv invoker) command(root bool, env []string, argv ...string) string {
	var words []string
	if root && iv.sudo {
		words = append(words, "sudo")
	}
	if len(env) > 0 {
		if root && iv.sudo {
			words = append(words, "env") // sudo resets the environment
		}
		for _, e := range env {
			k, v, _ := strings.Cut(e, "=")
			words = append(words, k+"="+shellQuote(v))
		}
	}
	for _, a := range argv {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that need no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
