package portal

import (
	"bytes"
	"mime/multipart"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSafeNext: whatever a login form's next says, the redirect stays on
// this site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"", "/", "/keys", "//evil.example/", "/\\evil.example", "https://evil.example/", "/slices/x?y=1", "/\t/evil.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		clean := strings.Map(func(r rune) rune { // what a browser makes of it
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, got)
		if !strings.HasPrefix(clean, "/") || strings.HasPrefix(clean, "//") || strings.HasPrefix(clean, "/\\") {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
		if got != "/slices" && got != next {
			t.Fatalf("safeNext(%q) = %q: a kept target must be kept as given", next, got)
		}
	})
}

// FuzzAcceptsGzip: any Accept-Encoding is read without a panic, and a
// header that does not name gzip never gets gzip.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip;q=0", "br, gzip;q=0.5", "GZIP ; q = 1", "identity", ";;,,=q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		if acceptsGzip(ae) && !strings.Contains(strings.ToLower(ae), "gzip") {
			t.Fatalf("acceptsGzip(%q) without gzip", ae)
		}
	})
}

// FuzzUploadedKey: any uploaded key file (name and bytes, through
// multipart parsing) gives either an error or trimmed UTF-8 text of at
// most maxKeyFile bytes, never a panic.
func FuzzUploadedKey(f *testing.F) {
	f.Add("id_ed25519.pub", []byte("ssh-ed25519 AAAA x\n"))
	f.Add(`"><script>.pub`, []byte{0xff, 0})
	f.Add("", []byte(""))
	f.Fuzz(func(t *testing.T, name string, content []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile("keyfile", name)
		if err != nil {
			return
		}
		fw.Write(content)
		mw.Close()
		r := httptest.NewRequest("POST", "/keys", &buf)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		if err := r.ParseMultipartForm(maxForm); err != nil {
			return
		}
		key, err := uploadedKey(r)
		if err != nil {
			return
		}
		if len(key) > maxKeyFile || !utf8.ValidString(key) || key != strings.TrimSpace(key) {
			t.Fatalf("uploadedKey(%q, %d bytes) = %d bytes %q", name, len(content), len(key), key)
		}
		if key == "" && len(bytes.TrimSpace(content)) != 0 && len(r.MultipartForm.File["keyfile"]) > 0 {
			t.Fatalf("uploadedKey lost a non-empty file %q", content)
		}
	})
}
