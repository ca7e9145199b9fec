package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
)

func TestInitAndSystemSite(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		_, err := e.s.Init(e.ctx, "x@y.org", "pw")
		wantCode(t, err, core.Conflict, "second init")
		sites := get(t, e, e.admin, core.Site, []any{int64(1)})
		if len(sites) != 1 || sites[0]["login_base"] != "pl" || sites[0]["max_slices"] != int64(100) {
			t.Fatalf("system site: %v", sites)
		}
		if !e.admin.HasRole(core.RoleAdmin) || !e.admin.HasRole(core.RolePI) || e.admin.SiteIDs[0] != 1 {
			t.Fatalf("admin caller: %+v", e.admin)
		}
		hrn := get(t, e, e.admin, core.Site, []any{int64(1)}, "hrn")
		if hrn[0]["hrn"] != "plc.pl" {
			t.Fatalf("hrn tag: %v", hrn)
		}
	})
}

func TestPersonPolicy(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("princeton", 10)
		pi := e.person("pi@princeton.edu", site, "pi")
		// A PI's new person is created disabled (an 'enabled' field is dropped)
		// at the PI's site.
		uid := e.add(pi, core.Person, core.Record{"email": "User@Princeton.EDU", "first_name": "U", "last_name": "Ser", "password": "secret", "enabled": true})
		recs := get(t, e, e.admin, core.Person, []any{uid})
		if recs[0]["enabled"] != false || recs[0]["email"] != "user@princeton.edu" {
			t.Fatalf("new person: %v", recs[0])
		}
		if _, ok := recs[0]["password"]; ok {
			t.Fatal("password returned")
		}
		if s := recs[0]["site_ids"].([]int64); len(s) != 1 || s[0] != site {
			t.Fatalf("site_ids %v", s)
		}
		_, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "user@princeton.edu", Password: "secret"}, nil)
		wantCode(t, err, core.Unauthenticated, "disabled person login")
		// The PI enables the user and grants user and tech, but not pi or admin.
		e.must(e.s.Update(e.ctx, pi, core.Person, uid, core.Record{"enabled": true}))
		e.must(e.s.Link(e.ctx, pi, core.PersonRole, uid, 30, nil))
		e.must(e.s.Link(e.ctx, pi, core.PersonRole, uid, 40, nil))
		wantCode(t, e.s.Link(e.ctx, pi, core.PersonRole, uid, 20, nil), core.Forbidden, "pi grants pi")
		wantCode(t, e.s.Link(e.ctx, pi, core.PersonRole, uid, 10, nil), core.Forbidden, "pi grants admin")
		user := e.login("user@princeton.edu", "secret")
		if !user.HasRole(core.RoleUser) || !user.HasRole(core.RoleTech) {
			t.Fatalf("roles %v", user.Roles)
		}
		// Roles gate the login for a method: a user-only method set.
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "user@princeton.edu", Password: "secret"}, OpRoles("AddSite"))
		wantCode(t, err, core.Unauthenticated, "roles ∩ method roles empty")
		// A user cannot enable accounts, nor update others.
		wantCode(t, e.s.Update(e.ctx, user, core.Person, uid, core.Record{"enabled": false}), core.Forbidden, "user disables self")
		wantCode(t, e.s.Update(e.ctx, user, core.Person, pi.PersonID, core.Record{"title": "x"}), core.Forbidden, "user updates pi")
		e.must(e.s.Update(e.ctx, user, core.Person, uid, core.Record{"title": "Dr"}))
		// A PI may not update another PI.
		pi2 := e.person("pi2@princeton.edu", site, "pi")
		wantCode(t, e.s.Update(e.ctx, pi, core.Person, pi2.PersonID, core.Record{"title": "x"}), core.Forbidden, "pi updates pi")
		// Visibility: a user sees itself only (a tech its site); the PI sees its site.
		if got := get(t, e, user, core.Person, nil, "person_id"); len(got) != 3 {
			t.Fatalf("tech sees %v", got)
		}
		e.must(e.s.Unlink(e.ctx, pi, core.PersonRole, uid, 40))
		user = e.login("user@princeton.edu", "secret")
		if got := get(t, e, user, core.Person, nil, "person_id"); len(got) != 1 {
			t.Fatalf("user sees %v", got)
		}
		if got := get(t, e, pi, core.Person, nil, "person_id"); len(got) != 3 {
			t.Fatalf("pi sees %v", got)
		}
		// Bad input.
		_, err = e.s.Add(e.ctx, e.admin, core.Person, core.Record{"email": "nope", "first_name": "a", "last_name": "b"})
		wantCode(t, err, core.Invalid, "bad email")
		_, err = e.s.Add(e.ctx, e.admin, core.Person, core.Record{"email": "pi@princeton.edu", "first_name": "a", "last_name": "b"})
		wantCode(t, err, core.Conflict, "duplicate email")
		// Disabled -> fails, deleted -> fails, ids never reused.
		e.must(e.s.Delete(e.ctx, e.admin, core.Person, uid))
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "user@princeton.edu", Password: "secret"}, nil)
		wantCode(t, err, core.Unauthenticated, "deleted person login")
		if got := get(t, e, e.admin, core.Person, []any{uid}); len(got) != 0 {
			t.Fatalf("deleted person listed: %v", got)
		}
		again := e.add(e.admin, core.Person, core.Record{"email": "user@princeton.edu", "first_name": "U", "last_name": "Ser"})
		if again <= uid {
			t.Fatalf("id reused: %d after %d", again, uid)
		}
	})
}

func TestKeys(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("mit", 5)
		u := e.person("u@mit.edu", site, "user")
		other := e.person("o@mit.edu", site, "user")
		k := sshKey(t)
		kid := e.add(u, core.Key, core.Record{"person_id": u.PersonID, "key_type": "ssh", "key": k})
		_, err := e.s.Add(e.ctx, u, core.Key, core.Record{"person_id": other.PersonID, "key": sshKey(t)})
		wantCode(t, err, core.Forbidden, "key for someone else")
		// What the original's pattern accepts (ssh-rsa, ssh-dss) is stored
		// even when OpenSSH cannot use it, flagged with the reason; other
		// key types get the strict check (issue 9.1).
		rsaShort, _ := rsa.GenerateKey(rand.Reader, 1024)
		pub, _ := ssh.NewPublicKey(&rsaShort.PublicKey)
		text := "ssh-rsa " + base64.StdEncoding.EncodeToString([]byte("any text at all")) + " user@host"
		for _, c := range []struct{ key, reason string }{
			{string(ssh.MarshalAuthorizedKey(pub)), "RSA key of 1024 bits is too short"},
			{dsaKey, "key type ssh-dss is not accepted"},
			{text, "not an OpenSSH public key"},
			{`command="ls" ` + k, ""}, // ed25519 with options: not the original's pattern
		} {
			id, err := e.s.Add(e.ctx, u, core.Key, core.Record{"person_id": u.PersonID, "key": c.key})
			if c.reason == "" {
				wantCode(t, err, core.Invalid, "options on an ed25519 key")
				continue
			}
			e.must(err)
			got := get(t, e, u, core.Key, []any{id}, "key", "usable", "unusable_reason")
			if got[0]["usable"] != false || !strings.Contains(fmt.Sprint(got[0]["unusable_reason"]), c.reason) || got[0]["key"] != strings.TrimSpace(c.key) {
				t.Errorf("%.40s: %v", c.key, got)
			}
			e.must(e.s.Delete(e.ctx, u, core.Key, id))
		}
		if got := get(t, e, u, core.Key, []any{kid}, "usable", "unusable_reason"); got[0]["usable"] != true || got[0]["unusable_reason"] != nil {
			t.Errorf("usable key: %v", got)
		}
		for _, bad := range []string{"ssh-rsa AAAAnotbase64!", "ssh-ed25519 " + base64.StdEncoding.EncodeToString([]byte("text")), "ssh-rsa\nAAAA"} {
			_, err = e.s.Add(e.ctx, u, core.Key, core.Record{"person_id": u.PersonID, "key": bad})
			wantCode(t, err, core.Invalid, bad)
		}
		// Non-admins see only their keys.
		if got := get(t, e, other, core.Key, nil); len(got) != 0 {
			t.Fatalf("other sees %v", got)
		}
		if got := get(t, e, u, core.Key, nil); len(got) != 1 || got[0]["key"] != k {
			t.Fatalf("own keys %v", got)
		}
		// The same material at another person, then blacklisting hides both
		// and refuses the material forever.
		e.add(other, core.Key, core.Record{"person_id": other.PersonID, "key": k})
		wantCode(t, e.s.BlacklistKey(e.ctx, u, kid), core.Forbidden, "user blacklists")
		e.must(e.s.BlacklistKey(e.ctx, e.admin, kid))
		if got := get(t, e, e.admin, core.Key, nil); len(got) != 0 {
			t.Fatalf("blacklisted keys listed: %v", got)
		}
		_, err = e.s.Add(e.ctx, u, core.Key, core.Record{"person_id": u.PersonID, "key": k})
		wantCode(t, err, core.Invalid, "re-add blacklisted")
		if got := get(t, e, e.admin, core.Person, []any{u.PersonID}, "key_ids"); len(got[0]["key_ids"].([]int64)) != 0 {
			t.Fatalf("key_ids %v", got)
		}
	})
}

func TestValidation(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("val", 5)
		long := strings.Repeat("é", 128) // 256 bytes
		cases := []struct {
			class core.Class
			rec   core.Record
			code  core.Code
			field string
		}{
			{core.Site, core.Record{"login_base": "ok", "name": "n", "abbreviated_name": "a", "colour": "red"}, core.Invalid, "colour"},
			{core.Site, core.Record{"login_base": "Bad_Base", "name": "n", "abbreviated_name": "a"}, core.Invalid, "login_base"},
			{core.Site, core.Record{"login_base": "val", "name": "n", "abbreviated_name": "a"}, core.Conflict, ""},
			{core.Site, core.Record{"login_base": "ok", "name": long, "abbreviated_name": "a"}, core.Invalid, "name"},
			{core.Site, core.Record{"login_base": "ok", "name": "n", "abbreviated_name": "a", "latitude": int64(45), "longitude": 1.0}, core.Invalid, "latitude"},
			{core.Site, core.Record{"login_base": "ok", "name": "n", "abbreviated_name": "a", "latitude": 45.0}, core.Invalid, "longitude"},
			{core.Site, core.Record{"login_base": "ok", "name": "n", "abbreviated_name": "a", "max_slices": "3"}, core.Invalid, "max_slices"},
			{core.Node, core.Record{"site_id": site, "hostname": "not a host"}, core.Invalid, "hostname"},
			{core.Node, core.Record{"site_id": site, "hostname": "n1.val.org", "boot_state": "flying"}, core.Invalid, "boot_state"},
			{core.Node, core.Record{"site_id": int64(999), "hostname": "n1.val.org"}, core.NotFound, ""},
			{core.Slice, core.Record{"name": "val-bad"}, core.Invalid, "name"},
			{core.Slice, core.Record{"name": "nosuch_x"}, core.Invalid, "name"},
			{core.Slice, core.Record{"name": "val_x", "expires": int64(5)}, core.Invalid, "expires"},
			{core.Person, core.Record{"email": "a@b.org", "first_name": "a"}, core.Invalid, "last_name"},
		}
		for _, c := range cases {
			_, err := e.s.Add(e.ctx, e.admin, c.class, c.rec)
			if core.ErrorCode(err) != c.code || c.field != "" && core.ErrorField(err) != c.field {
				t.Errorf("add %s %v: got %v (field %q), want %s on %q", c.class, c.rec, err, core.ErrorField(err), c.code, c.field)
			}
		}
		// Exactly at the byte limit passes: 127 two-byte runes = 254 bytes.
		e.add(e.admin, core.Site, core.Record{"login_base": "ok", "name": strings.Repeat("é", 127), "abbreviated_name": "a", "latitude": 45.0, "longitude": -71.5})
		// Bool where int expected passes.
		id := e.add(e.admin, core.Site, core.Record{"login_base": "ok2", "name": "n", "abbreviated_name": "a", "max_slices": true})
		if got := get(t, e, e.admin, core.Site, []any{id}, "max_slices"); got[0]["max_slices"] != int64(1) {
			t.Fatalf("bool as int: %v", got)
		}
		// Bad return fields and filter fields.
		_, err := e.s.Get(e.ctx, e.admin, core.Site, nil, []string{"nope"})
		wantCode(t, err, core.Invalid, "return field")
		f, _ := core.ParseFilter(map[string]any{"nope": int64(1)})
		_, err = e.s.Get(e.ctx, e.admin, core.Node, f, nil)
		wantCode(t, err, core.Invalid, "filter field")
		if core.ErrorField(err) != "nope" || !strings.Contains(err.Error(), "Invalid filter field 'nope'") {
			t.Fatalf("filter field message: %v", err)
		}
		_, err = e.s.Resolve(e.ctx, e.admin, core.Node, "missing.example.org")
		wantCode(t, err, core.NotFound, "resolve")
		wantCode(t, e.s.Update(e.ctx, e.admin, core.Site, id, core.Record{"site_id": int64(3)}), core.Invalid, "update ro field")
	})
}

func TestAuthAndSessions(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("auth", 5)
		u := e.person("u@auth.org", site, "user")
		info, err := e.s.CreateSession(e.ctx, u, 0)
		e.must(err)
		if info.Expires != e.clock.Now().Unix()+86400 || len(info.ID) != 44 {
			t.Fatalf("session %+v", info)
		}
		c, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: info.ID}, OpRoles("GetSlices"))
		e.must(err)
		if c.PersonID != u.PersonID || c.Session != info.ID {
			t.Fatalf("session caller %+v", c)
		}
		// Role mismatch under session auth: 108, and the session survives.
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: info.ID}, OpRoles("AddSite"))
		wantCode(t, err, core.Forbidden, "session role mismatch")
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: info.ID}, nil)
		e.must(err)
		// Expiry: 103 and the session is deleted.
		e.clock.Add(25 * time.Hour)
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: info.ID}, nil)
		wantCode(t, err, core.Unauthenticated, "expired session")
		e.clock.Add(-25 * time.Hour)
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: info.ID}, nil)
		wantCode(t, err, core.Unauthenticated, "deleted session")
		// DeleteSession.
		info, _ = e.s.CreateSession(e.ctx, u, time.Hour)
		us := *u
		us.Session = info.ID
		e.must(e.s.DeleteSession(e.ctx, &us, ""))
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: info.ID}, nil)
		wantCode(t, err, core.Unauthenticated, "session after delete")
		// Anonymous.
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "anonymous"}, OpRoles("GetSlices"))
		wantCode(t, err, core.Unauthenticated, "anonymous GetSlices")
		an, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "anonymous"}, OpRoles("GetNodes"))
		e.must(err)
		_, err = e.s.Add(e.ctx, an, core.Site, core.Record{})
		wantCode(t, err, core.Unauthenticated, "anonymous AddSite")
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "magic"}, nil)
		wantCode(t, err, core.Invalid, "auth method")
		// Node key, node sessions and HMAC.
		nid := e.node(site, "n1.auth.org")
		nc := e.nodeCaller(nid)
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "node_key", NodeID: nid, NodeKey: "wrong"}, nil)
		wantCode(t, err, core.Unauthenticated, "bad node key")
		goodKey, _ := e.s.nodeKey(e.ctx, nid)
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "node_key", NodeID: nid, NodeKey: goodKey}, OpRoles("AddSite"))
		wantCode(t, err, core.Unauthenticated, "node key on a non-node method")
		ns1, err := e.s.CreateSession(e.ctx, nc, 0)
		e.must(err)
		ns2, err := e.s.CreateSession(e.ctx, nc, 0)
		e.must(err)
		if ns2.Expires != 0 {
			t.Fatalf("node session expires %d", ns2.Expires)
		}
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: ns1.ID}, nil)
		wantCode(t, err, core.Unauthenticated, "replaced node session")
		c, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: ns2.ID}, OpRoles("GetSlivers"))
		e.must(err)
		if c.Kind != core.NodeCaller || c.NodeID != nid {
			t.Fatalf("node session caller %+v", c)
		}
		_, err = e.s.Authenticate(e.ctx, core.Credentials{Method: "session", Session: ns2.ID}, OpRoles("AddSite"))
		wantCode(t, err, core.Forbidden, "node session on admin method")
		key, _ := e.s.nodeKey(e.ctx, nid)
		m := hmac.New(sha1.New, []byte(key))
		m.Write([]byte("[]"))
		c, err = e.s.VerifyNodeHMAC(e.ctx, nid, hex.EncodeToString(m.Sum(nil)), "[]")
		e.must(err)
		if c.NodeID != nid {
			t.Fatalf("hmac caller %+v", c)
		}
	})
}

// TestLoginBackoff: an attacker failing from one source is slowed and
// then refused (RateLimited with a Retry-After), but never keeps the right
// password out from a source that has not been failing; a source spraying
// many accounts is refused as a whole. (env: PairFree 5, SourceFree 8.)
func TestLoginBackoff(t *testing.T) {
	e := newEnv(t, "")
	attacker := WithRemoteAddr(e.ctx, "192.0.2.7")
	admin := WithRemoteAddr(e.ctx, "198.51.100.1")
	bad := core.Credentials{Method: "password", Username: adminEmail, Password: "wrong"}
	good := core.Credentials{Method: "password", Username: adminEmail, Password: adminPass}
	for i := 0; i < 5; i++ {
		_, err := e.s.Authenticate(attacker, bad, nil)
		wantCode(t, err, core.Unauthenticated, "bad password within the free failures")
	}
	_, err := e.s.Authenticate(attacker, bad, nil) // the 6th failure starts the backoff
	wantCode(t, err, core.Unauthenticated, "6th bad password")
	for _, cred := range []core.Credentials{bad, good} {
		_, err = e.s.Authenticate(attacker, cred, nil)
		wantCode(t, err, core.RateLimited, "attacker's source during the backoff")
		if ra := core.RetryAfter(err); ra != time.Second {
			t.Fatalf("Retry-After %v, want 1s", ra)
		}
	}
	// The admin, from a source that has not been failing, gets in at once.
	if _, err := e.s.Authenticate(admin, good, nil); err != nil {
		t.Fatalf("right password from another source: %v", err)
	}
	// The wait doubles with each further failure.
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		e.clock.Add(core.RetryAfter(err))
		_, err = e.s.Authenticate(attacker, bad, nil)
		wantCode(t, err, core.Unauthenticated, "bad password after the wait")
		_, err = e.s.Authenticate(attacker, bad, nil)
		wantCode(t, err, core.RateLimited, "next try at once")
		if ra := core.RetryAfter(err); ra != want {
			t.Fatalf("Retry-After %v, want %v", ra, want)
		}
	}
	// After the wait, the right password from the attacker's source works
	// and clears that pair.
	e.clock.Add(core.RetryAfter(err))
	if _, err := e.s.Authenticate(attacker, good, nil); err != nil {
		t.Fatalf("right password after the wait: %v", err)
	}
	_, err = e.s.Authenticate(attacker, bad, nil)
	wantCode(t, err, core.Unauthenticated, "pair cleared by a success")

	// Spraying: failures on many accounts from one source refuse that
	// source as a whole (it has 9 failures now, beyond SourceFree 8)...
	sprayer := WithRemoteAddr(e.ctx, "203.0.113.9")
	for i := 0; i < 9; i++ {
		_, err = e.s.Authenticate(sprayer, core.Credentials{Method: "password", Username: sprintf("n%d@x.org", i), Password: "x"}, nil)
		wantCode(t, err, core.Unauthenticated, "spray")
	}
	_, err = e.s.Authenticate(sprayer, good, nil)
	wantCode(t, err, core.RateLimited, "sprayer's source")
	// ... and no other.
	if _, err := e.s.Authenticate(admin, good, nil); err != nil {
		t.Fatalf("other source during a spray: %v", err)
	}
	// Node keys run under the same backoff.
	site := e.site("bo", 1)
	nid := e.node(site, "n.bo.org")
	nodeAttacker := WithRemoteAddr(e.ctx, "192.0.2.50")
	for i := 0; i < 6; i++ {
		_, err = e.s.Authenticate(nodeAttacker, core.Credentials{Method: "node_key", NodeID: nid, NodeKey: "wrong"}, nil)
		wantCode(t, err, core.Unauthenticated, "bad node key")
	}
	_, err = e.s.Authenticate(nodeAttacker, core.Credentials{Method: "node_key", NodeID: nid, NodeKey: "wrong"}, nil)
	wantCode(t, err, core.RateLimited, "node key")
}

func TestJoin(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("join", 5)
		tech := e.person("t@join.org", site, "tech")
		user := e.person("u@join.org", site, "user")
		nid := e.node(site, "n.join.org")
		_, err := e.s.IssueJoinToken(e.ctx, user, nid)
		wantCode(t, err, core.Forbidden, "user issues token")
		secret, err := e.s.IssueJoinToken(e.ctx, tech, nid)
		e.must(err)
		_, err = e.s.JoinNode(e.ctx, nid, "wrong", "")
		wantCode(t, err, core.Unauthenticated, "wrong secret")
		key, err := e.s.JoinNode(e.ctx, nid, secret, sshKey(t))
		e.must(err)
		if _, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "node_key", NodeID: nid, NodeKey: key}, nil); err != nil {
			t.Fatal(err)
		}
		_, err = e.s.JoinNode(e.ctx, nid, secret, "")
		wantCode(t, err, core.Unauthenticated, "reused secret")
		secret, _ = e.s.IssueJoinToken(e.ctx, e.admin, nid)
		e.clock.Add(25 * time.Hour)
		_, err = e.s.JoinNode(e.ctx, nid, secret, "")
		wantCode(t, err, core.Unauthenticated, "expired secret")
	})
}

// dsaKey is a 1024-bit DSA public key (ssh-dss), a type PLC refuses.
const dsaKey = "ssh-dss AAAAB3NzaC1kc3MAAACBAIAfWP+xIGwbVniK33OBhcDy2bJxS2qPx86fVZ/D8cc5x1d0sbfgU55aGH2KrXtwDTCeXZvJcA/ZYcvybmhgYX2kOQty+jlpPAOfW2qnhTNYlHzBe0KkmOKzpIzYFQ591UAxQuy1dpaM6BSW48Bc4cyp70cKwlLf/gY+kBP1XzXzAAAAFQCAwdEdPwqo17rylovuyWHJXQ4rTQAAAH9JQ78BKKHxs7uRZOevhH1Ywz7Kx+tCsZmz61APZp6xzIXXUkEoj4jsbLZn9YMZylxzHxDXeFSpkRoph/3TDG6s9Kn3At3K7XmdJzDFcI5g4oJTE9DH3fX/r/n+iOja0QmEb+Ze06kTi0iwN+7oHUyitLdHFdRQt01WYIxWvhPjAAAAgAUMFDlm3/S0Gtv0SP40orW4APAqR8xa/1QAKkL2a/EZlwm7+Zx6jRtpbNVMXu1LBzIVzb8aQNRFrYyGkKW+xjoqsD68Y4NbjfRuGwB6KHI8YQWyIYLp0R5WE3750P1TDKJhb+ork7JHnDtAneoXxf2vgsYgac5+YGUz5W0ips9o"
