package sliver

import (
	"fmt"
	"strings"
)

// The files the runtime keeps inside every sliver. All generation here is
// pure; rootfs.go writes the results safely into the sliver's root.

// rcScript is run by the sliver's init (PID 1): it starts the initscript
// and then idles, so init has a child to wait for. Killing the idle sleep
// stops the sliver, like halt; the agent's next Apply restarts it.
const rcScript = `#!/bin/sh
# Written by pl node. Run by the sliver's init (PID 1).
exec </dev/null >/dev/null 2>&1
rm -f /var/run/pl-initscript.pid
/bin/sh ` + initctl + ` start
exec sleep 2147483647
`

// initctlScript starts, stops or restarts the slice's initscript as root
// in its own session, logging to /var/log/initscript.log. stop ends the
// whole session: TERM, then KILL after two seconds.
const initctlScript = `#!/bin/sh
# Written by pl node: initctl start|stop|restart runs ` + initscript + `.
pidf=/var/run/pl-initscript.pid
log=/var/log/initscript.log
stop() {
	[ -f $pidf ] || return 0
	p=$(cat $pidf)
	rm -f $pidf
	[ -n "$p" ] || return 0
	kill -TERM -$p 2>/dev/null || return 0
	i=0
	while kill -0 -$p 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done
	kill -KILL -$p 2>/dev/null
	return 0
}
start() {
	[ -s ` + initscript + ` ] || return 0
	mkdir -p /var/log /var/run
	setsid /bin/sh ` + initscript + ` start </dev/null >>$log 2>&1 &
	echo $! >$pidf
}
case "$1" in
start) start ;;
stop) stop ;;
restart) stop; start ;;
*) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
`

// mergeLines replaces, in a colon-separated database (passwd, group,
// shadow), every line whose first field is one of names, or whose field
// idField (>0) equals id, by want, keeping all other lines in order.
func mergeLines(cur string, want []string, names map[string]bool, idField int, id string) string {
	var out []string
	for _, line := range strings.Split(cur, "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		if names[f[0]] || (idField > 0 && len(f) > idField && f[idField] == id && f[0] != "root") {
			continue
		}
		out = append(out, line)
	}
	out = append(out, want...)
	return strings.Join(out, "\n") + "\n"
}

// passwdFile returns the sliver's /etc/passwd: the image's entries plus
// root (if missing) and the slice account.
func passwdFile(cur, slice string) string {
	want := []string{fmt.Sprintf("%s:x:%d:%d:%s slice:/home/%s:/bin/sh", slice, accountUID, accountUID, slice, slice)}
	out := mergeLines(cur, want, map[string]bool{slice: true}, 2, fmt.Sprint(accountUID))
	if !hasEntry(out, "root") {
		out = "root:x:0:0:root:/root:/bin/sh\n" + out
	}
	return out
}

// groupFile returns /etc/group with the slice's group.
func groupFile(cur, slice string) string {
	want := []string{fmt.Sprintf("%s:x:%d:", slice, accountUID)}
	out := mergeLines(cur, want, map[string]bool{slice: true}, 2, fmt.Sprint(accountUID))
	if !hasEntry(out, "root") {
		out = "root:x:0:\n" + out
	}
	return out
}

// shadowFile returns /etc/shadow where root has an empty password (su from
// the slice account needs none: the "weaker root" of the original) and the
// slice account's password is locked (logins come through the SSH
// gateway).
func shadowFile(cur, slice string) string {
	var out []string
	root := false
	for _, line := range strings.Split(cur, "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		if f[0] == slice {
			continue
		}
		if f[0] == "root" {
			root = true
			if len(f) > 1 {
				f[1] = ""
			}
			line = strings.Join(f, ":")
		}
		out = append(out, line)
	}
	if !root {
		out = append([]string{"root::0:0:99999:7:::"}, out...)
	}
	out = append(out, slice+":!:0:0:99999:7:::")
	return strings.Join(out, "\n") + "\n"
}

func hasEntry(db, name string) bool {
	for _, line := range strings.Split(db, "\n") {
		if n, _, _ := strings.Cut(line, ":"); n == name && line != "" {
			return true
		}
	}
	return false
}

// authorizedKeys renders the slice account's authorized_keys.
func authorizedKeys(keys []string) string {
	var b strings.Builder
	b.WriteString("# Written by pl node from the slice's keys at PLC.\n")
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			b.WriteString(k + "\n")
		}
	}
	return b.String()
}
