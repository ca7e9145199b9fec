package portal_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// upload posts the key form as a browser does with a file chosen.
func (b *browser) upload(path string, fields map[string]string, file string, content []byte) (*http.Response, string) {
	b.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != "" {
		fw, err := mw.CreateFormFile("keyfile", file)
		b.e.must(err)
		fw.Write(content)
	}
	mw.Close()
	req, err := http.NewRequest("POST", b.e.srv.URL+path, &buf)
	b.e.must(err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// TestKeyUpload: a key file uploaded (multipart) is added like a pasted
// one; an oversized, binary or refused file is an error beside the field
// and adds nothing; the upload needs the CSRF token too.
func TestKeyUpload(t *testing.T) {
	e := newEnv(t)
	e.person("user@example.org", 30)
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")
	tok := b.csrf("/keys")
	_, body := b.get("/keys")
	wantBody(t, "form", body, `enctype="multipart/form-data"`, `type="file"`)

	resp, body := b.upload("/keys", map[string]string{}, "id_ed25519.pub", []byte("ssh-ed25519 AAAA x"))
	wantStatus(t, "no CSRF", resp, body, http.StatusForbidden)
	const good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host\n"
	for _, tc := range []struct {
		name, file, want string
		content          []byte
		fields           map[string]string
	}{
		{"too large", "big.pub", "has 16385 bytes: a public key file", bytes.Repeat([]byte("a"), 16<<10+1), nil},
		{"binary", "id_ed25519", "is not text: upload the public key (.pub), never the private one", []byte{0xff, 0xfe, 0}, nil},
		{"bad key", "x.pub", "key: ", []byte("ssh-ed25519 not-base64!"), nil},
		{"both", "x.pub", "paste a key or upload a file, not both", []byte(good), map[string]string{"key": "ssh-ed25519 AAAA"}},
		{"injection", `"><script>alert(1)</script>.pub`, // multipart keeps the base name: script>.pub
			`&#34;script&gt;.pub&#34;`, bytes.Repeat([]byte("a"), 16<<10+1), nil},
	} {
		f := map[string]string{"csrf": tok}
		for k, v := range tc.fields {
			f[k] = v
		}
		resp, body := b.upload("/keys", f, tc.file, tc.content)
		wantStatus(t, tc.name, resp, body, http.StatusBadRequest)
		wantBody(t, tc.name, body, `class="field-error" id="key-error"`, tc.want)
		if strings.Contains(body, "<script>") {
			t.Fatalf("%s: unescaped:\n%s", tc.name, body)
		}
	}
	recs, err := e.svc.Get(e.ctx, e.admin, core.Key, nil, []string{"key"})
	e.must(err)
	if len(recs) != 0 {
		t.Fatalf("refused uploads added keys: %v", recs)
	}
	resp, body = b.upload("/keys", map[string]string{"csrf": tok}, "id_ed25519.pub", []byte(good))
	wantStatus(t, "good upload", resp, body, http.StatusOK)
	wantBody(t, "good upload", body, "Key added.", "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host")
	// A body over the form limit is refused before anything is read.
	resp, body = b.upload("/keys", map[string]string{"csrf": tok}, "huge.pub", bytes.Repeat([]byte("a"), 70<<10))
	wantStatus(t, "over the form limit", resp, body, http.StatusBadRequest)
	wantBody(t, "over the form limit", body, "the form could not be read")
}
