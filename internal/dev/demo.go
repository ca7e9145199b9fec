package dev

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
)

// Demo is the demo data of a planet.
type Demo struct {
	Slice    string // slice name, bound to every node
	Port     int    // reserved TCP port of its HTTP service
	PI, User string // emails
	PWFile   string // file holding the PI's and the user's password
	KeyFile  string // ssh private key of the user ("" when it is the invoking user's own agent/default key)
	PubKey   string // the user's public key
}

// DemoPort is the port the demo slice reserves for its HTTP service.
const DemoPort = 8080

// DemoInitScript starts a small HTTP service on DemoPort inside every
// sliver: busybox httpd serving a page naming the slice and the node.
const DemoInitScript = `#!/bin/sh
mkdir -p /tmp/www
echo "hello from slice $(cat /etc/slicename 2>/dev/null || hostname) on $(hostname)" > /tmp/www/index.html
exec busybox httpd -f -p 8080 -h /tmp/www
`

// Tag types the planet needs at PLC (created when missing).
var demoTagTypes = map[string]string{
	"initscript_code": "literal init script run in each sliver",
	"ports":           "reserved TCP/UDP ports (tcp/80, udp/5000-5010)",
}

// ensureTagType returns the id of a tag type, creating it when missing.
func ensureTagType(ctx context.Context, reg core.Registry, name, desc string) (int64, error) {
	id, err := reg.Resolve(ctx, nil, core.TagType, name)
	if err == nil {
		return id, nil
	}
	if core.ErrorCode(err) != core.NotFound {
		return 0, err
	}
	return reg.Add(ctx, nil, core.TagType, core.Record{"tagname": name, "description": desc, "category": "slice/config"})
}

// userKey returns the invoking user's ssh public key and private key file
// (the user who ran sudo, when run through sudo), or generates a fresh
// ed25519 key pair in dir.
func userKey(dir string) (pub, privFile string, err error) {
	home := os.Getenv("HOME")
	if su := os.Getenv("SUDO_USER"); su != "" {
		if u, err := user.Lookup(su); err == nil {
			home = u.HomeDir
		}
	}
	if home != "" {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			priv := filepath.Join(home, ".ssh", name)
			b, err := os.ReadFile(priv + ".pub")
			if err != nil {
				continue
			}
			if _, err := os.Stat(priv); err != nil {
				continue
			}
			return strings.TrimSpace(string(b)), priv, nil
		}
	}
	return freshKey(dir, "id_ed25519")
}

// freshKey writes a new ed25519 key pair to dir/name{,.pub}.
func freshKey(dir, name string) (pub, privFile string, err error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	block, err := ssh.MarshalPrivateKey(key, "pl dev demo user")
	if err != nil {
		return "", "", err
	}
	privFile = filepath.Join(dir, name)
	if err := os.WriteFile(privFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", "", err
	}
	sp, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	pub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " pl-dev-demo"
	if err := os.WriteFile(privFile+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return "", "", err
	}
	return pub, privFile, nil
}

// randomPassword returns a random password of 20 URL-safe characters.
func randomPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// addPerson creates an enabled person with a role at a site.
func addPerson(ctx context.Context, reg core.Registry, email, first, last, password string, siteID int64, role string) (int64, error) {
	id, err := reg.Add(ctx, nil, core.Person, core.Record{"email": email, "first_name": first, "last_name": last, "password": password})
	if err != nil {
		return 0, fmt.Errorf("add person %s: %w", email, err)
	}
	if err := reg.Update(ctx, nil, core.Person, id, core.Record{"enabled": true}); err != nil {
		return 0, fmt.Errorf("enable %s: %w", email, err)
	}
	if err := reg.Link(ctx, nil, core.PersonSite, id, siteID, nil); err != nil {
		return 0, fmt.Errorf("%s at site: %w", email, err)
	}
	roleID, err := reg.Resolve(ctx, nil, core.Role, role)
	if err != nil {
		return 0, err
	}
	if err := reg.Link(ctx, nil, core.PersonRole, id, roleID, nil); err != nil {
		return 0, fmt.Errorf("%s role %s: %w", email, role, err)
	}
	return id, nil
}

// setupDemo creates a PI and a user at the PLC's site, the user's key, and
// the demo slice with its HTTP service on every node, then waits until the
// service answers on every node.
func (p *Planet) setupDemo(ctx context.Context) error { return p.setupDemoWith(ctx, nil) }

// setupDemoWith creates the demo slice on every node of the planet and on
// the given nodes of a peer PLC (hostnames, foreign objects here).
func (p *Planet) setupDemoWith(ctx context.Context, peerNodes []string) error {
	reg, err := p.AdminClient(ctx)
	if err != nil {
		return err
	}
	site := p.Sites[0].LoginBase
	siteID, err := reg.Resolve(ctx, nil, core.Site, site)
	if err != nil {
		return err
	}
	d := &Demo{Slice: site + "_demo", Port: DemoPort, PI: "pi@" + site + ".example.org", User: "user@" + site + ".example.org"}
	d.PWFile = p.DataPath("demo-password")
	pw := randomPassword()
	if err := os.WriteFile(d.PWFile, []byte(pw+"\n"), 0o600); err != nil {
		return err
	}
	if _, err := addPerson(ctx, reg, d.PI, "Pat", "Investigator", pw, siteID, core.RolePI); err != nil {
		return err
	}
	userID, err := addPerson(ctx, reg, d.User, "Uma", "User", pw, siteID, core.RoleUser)
	if err != nil {
		return err
	}
	if d.PubKey, d.KeyFile, err = userKey(p.DataDir); err != nil {
		return fmt.Errorf("user key: %w", err)
	}
	// The demo user's files belong to whoever ran pl dev (through sudo),
	// so the printed pl login, pl exec and ssh commands work as printed.
	mine := []string{d.PWFile}
	if strings.HasPrefix(d.KeyFile, p.DataDir+"/") {
		mine = append(mine, d.KeyFile, d.KeyFile+".pub")
	}
	if err := p.invoker.give(mine...); err != nil {
		return fmt.Errorf("demo user's files: %w", err)
	}
	if _, err := reg.Add(ctx, nil, core.Key, core.Record{"person_id": userID, "key_type": "ssh", "key": d.PubKey}); err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	sliceID, err := reg.Add(ctx, nil, core.Slice, core.Record{
		"name": d.Slice, "url": "https://" + site + ".example.org/demo",
		"description": "pl dev demo slice: a small HTTP service on every node", "max_nodes": 1000,
	})
	if err != nil {
		return fmt.Errorf("add slice: %w", err)
	}
	if err := reg.Link(ctx, nil, core.SlicePerson, sliceID, userID, nil); err != nil {
		return err
	}
	if err := p.tagSlice(ctx, reg, sliceID, "initscript_code", DemoInitScript); err != nil {
		return err
	}
	if err := p.tagSlice(ctx, reg, sliceID, "ports", fmt.Sprintf("tcp/%d", DemoPort)); err != nil {
		return err
	}
	for _, n := range p.Nodes {
		if err := reg.Link(ctx, nil, core.SliceNode, sliceID, n.NodeID, nil); err != nil {
			return fmt.Errorf("add %s to %s: %w", n.Hostname, d.Slice, err)
		}
	}
	for _, h := range peerNodes {
		id, err := reg.Resolve(ctx, nil, core.Node, h)
		if err != nil {
			return fmt.Errorf("the peer's node %s: %w", h, err)
		}
		if err := reg.Link(ctx, nil, core.SliceNode, sliceID, id, nil); err != nil {
			return fmt.Errorf("add the peer's node %s to %s: %w", h, d.Slice, err)
		}
	}
	p.Demo = d
	if err := p.writeKnownHosts(ctx, reg); err != nil {
		return err
	}
	return p.waitHTTP(ctx, DemoPort, 2*time.Minute)
}

func (p *Planet) tagSlice(ctx context.Context, reg core.Registry, sliceID int64, tag, value string) error {
	tt, err := ensureTagType(ctx, reg, tag, demoTagTypes[tag])
	if err != nil {
		return fmt.Errorf("tag type %s: %w", tag, err)
	}
	if _, err := reg.Add(ctx, nil, core.SliceTag, core.Record{"slice_id": sliceID, "tag_type_id": tt, "value": value}); err != nil {
		return fmt.Errorf("slice tag %s: %w", tag, err)
	}
	return nil
}

// writeKnownHosts writes the nodes' ssh host keys, as reported to PLC, to
// known_hosts in the data directory, so ssh can verify them without
// touching the user's own known_hosts.
func (p *Planet) writeKnownHosts(ctx context.Context, reg core.Registry) error {
	recs, err := reg.Get(ctx, nil, core.Node, nil, []string{"node_id", "ssh_rsa_key"})
	if err != nil {
		return err
	}
	keys := map[int64]string{}
	for _, r := range recs {
		id, _ := r["node_id"].(int64)
		k, _ := r["ssh_rsa_key"].(string)
		keys[id] = strings.TrimSpace(k)
	}
	var b strings.Builder
	for _, n := range p.Nodes {
		if k := keys[n.NodeID]; k != "" {
			fmt.Fprintf(&b, "%s,%s %s\n", n.Addr, n.Hostname, k)
		}
	}
	return os.WriteFile(p.KnownHosts(), []byte(b.String()), 0o644)
}

// KnownHosts is the known_hosts file of the planet's nodes.
func (p *Planet) KnownHosts() string { return p.DataPath("known_hosts") }

// waitHTTP waits until every node answers HTTP on port.
func (p *Planet) waitHTTP(ctx context.Context, port int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, n := range p.Nodes {
		url := fmt.Sprintf("http://%s/", net.JoinHostPort(n.Addr.String(), strconv.Itoa(port)))
		for {
			resp, err := hc.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if ctx.Err() != nil {
				log := filepath.Join(n.StateDir, "node.log")
				return fmt.Errorf("%s: no answer from %s (%v); last error in %s: %s", n.Name, url, err, log, lastError(log))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// lastError returns the last line of a log file that reports an error.
func lastError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	last := "none"
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			last = l
		}
	}
	return last
}
