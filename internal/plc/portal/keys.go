package portal

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/planetlab/pl/internal/core"
)

type keyRow struct {
	ID       int64
	Type     string
	Key      string
	Usable   bool
	Unusable string // why the key is not installed anywhere
}

type keysData struct {
	Keys     []keyRow
	Pasted   string // the refused key, kept in the form
	KeyError string // shown beside the key field
}

func (h *Handler) keysPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.showKeys(w, r, s, http.StatusOK, keysData{}, "")
}

func (h *Handler) showKeys(w http.ResponseWriter, r *http.Request, s *session, st int, d keysData, flash string) {
	recs, err := h.reg.Get(r.Context(), s.caller, core.Key, &core.Filter{Terms: []core.Term{{Field: "person_id", Op: core.Eq, Value: s.caller.PersonID}}},
		[]string{"key_id", "key_type", "key", "usable", "unusable_reason"})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, k := range recs {
		id, _ := k["key_id"].(int64)
		usable, _ := k["usable"].(bool)
		d.Keys = append(d.Keys, keyRow{ID: id, Type: str(k, "key_type"), Key: str(k, "key"), Usable: usable, Unusable: str(k, "unusable_reason")})
	}
	p := s.page("SSH keys", d)
	p.Flash = flash
	h.render(w, st, "keys", p)
}

// maxKeyFile bounds an uploaded key file: a public key is one line of a
// few KB at most (an RSA 16384-bit key is about 2.8 KB).
const maxKeyFile = 16 << 10

// uploadedKey reads the key file of field keyfile, if one was sent.
func uploadedKey(r *http.Request) (string, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["keyfile"]) == 0 {
		return "", nil
	}
	fh := r.MultipartForm.File["keyfile"][0]
	if fh.Size > maxKeyFile {
		return "", fmt.Errorf("the file %q has %d bytes: a public key file (e.g. ~/.ssh/id_ed25519.pub) has at most %d", fh.Filename, fh.Size, maxKeyFile)
	}
	f, err := fh.Open()
	if err != nil {
		return "", fmt.Errorf("the file %q could not be read: %v", fh.Filename, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil || len(b) > maxKeyFile {
		return "", fmt.Errorf("the file %q could not be read (at most %d bytes)", fh.Filename, maxKeyFile)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("the file %q is not text: upload the public key (.pub), never the private one", fh.Filename)
	}
	return strings.TrimSpace(string(b)), nil
}

func (h *Handler) addKey(w http.ResponseWriter, r *http.Request, s *session) {
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if up, err := uploadedKey(r); err != nil {
		h.showKeys(w, r, s, http.StatusBadRequest, keysData{Pasted: key, KeyError: err.Error()}, "")
		return
	} else if up != "" {
		if key != "" {
			h.showKeys(w, r, s, http.StatusBadRequest, keysData{Pasted: key, KeyError: "paste a key or upload a file, not both"}, "")
			return
		}
		key = up
	}
	if key == "" {
		h.showKeys(w, r, s, http.StatusBadRequest, keysData{KeyError: "paste a public key (one line, e.g. ssh-ed25519 AAAA... you@host)"}, "")
		return
	}
	_, err := h.reg.Add(r.Context(), s.caller, core.Key, core.Record{"person_id": s.caller.PersonID, "key_type": "ssh", "key": key})
	if err != nil {
		if core.ErrorCode(err) == core.Invalid || core.ErrorCode(err) == core.Conflict {
			h.showKeys(w, r, s, statusOf(err), keysData{Pasted: key, KeyError: core.PublicMessage(err)}, "")
			return
		}
		h.fail(w, r, s, err)
		return
	}
	h.showKeys(w, r, s, http.StatusOK, keysData{}, "Key added.")
}

func (h *Handler) deleteKey(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, s, core.Errorf(core.Invalid, "key id %q is not a number", r.PathValue("id")))
		return
	}
	if err := h.reg.Delete(r.Context(), s.caller, core.Key, id); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.showKeys(w, r, s, http.StatusOK, keysData{}, "Key deleted.")
}
