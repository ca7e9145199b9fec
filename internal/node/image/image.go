// Package image keeps the node's reference images: read-only root
// filesystems shared by many slivers as the lower layer of their overlay
// root, as vservers once shared one reference tree.
//
// Layout under the store's directory:
//
//	<dir>/<name>/rootfs        the image tree, owned by host uid 0
//	<dir>/<name>/users/<who>   one empty marker per sliver using the image
//	<dir>/.tmp-*               staging trees of imports in progress
//
// An import is staged beside the images and renamed into place, so an
// image either exists completely or not at all. Removal is refused while a
// user marker exists; markers are written by the sliver runtime before it
// mounts an image and removed after it unmounts it.
package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Default is the name of the built-in image (see BuildDefault).
const Default = "default"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name is a valid image name: 1-64 characters of
// lower-case letters, digits, '.', '_' and '-', starting with a letter or
// digit.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return core.FieldErrorf("image", "invalid image name %q: want 1-64 of [a-z0-9._-], starting with a letter or digit", name)
	}
	return nil
}

// Info describes one image.
type Info struct {
	Name    string
	Created time.Time
	Users   []string // slivers using it
}

// Store is a directory of reference images. Its methods are safe for
// concurrent use by one process; imports of the same name from several
// processes are resolved by the final rename (one wins, the others fail).
type Store struct {
	dir string
}

// Open returns the store rooted at dir, creating the directory if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	// Slivers' user namespaces traverse this path to reach their lower
	// layer; the trees themselves stay root-owned and read-only to them.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Rootfs returns the root directory of the named image, or a NotFound
// error.
func (s *Store) Rootfs(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	p := filepath.Join(s.dir, name, "rootfs")
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		return "", core.Errorf(core.NotFound, "image %q not found", name)
	}
	return p, nil
}

// List returns the images, sorted by name.
func (s *Store) List() ([]Info, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || ValidName(e.Name()) != nil {
			continue
		}
		st, err := os.Stat(filepath.Join(s.dir, e.Name(), "rootfs"))
		if err != nil {
			continue
		}
		users, err := s.users(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Info{Name: e.Name(), Created: st.ModTime(), Users: users})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) users(name string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, name, "users"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// Acquire records that user (a sliver name) uses the image. Idempotent.
func (s *Store) Acquire(name, user string) error {
	if _, err := s.Rootfs(name); err != nil {
		return err
	}
	if user == "" || strings.ContainsAny(user, "/\x00") || user == "." || user == ".." {
		return core.FieldErrorf("user", "invalid image user %q", user)
	}
	d := filepath.Join(s.dir, name, "users")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("image %q: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(d, user), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("image %q: %w", name, err)
	}
	return f.Close()
}

// Release forgets that user uses the image. Idempotent; releasing from an
// image that no longer exists is not an error.
func (s *Store) Release(name, user string) error {
	if ValidName(name) != nil || user == "" || strings.ContainsAny(user, "/\x00") {
		return nil
	}
	err := os.Remove(filepath.Join(s.dir, name, "users", user))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %q: %w", name, err)
	}
	return nil
}

// Remove deletes an image. It fails with Conflict while slivers use it.
func (s *Store) Remove(name string) error {
	if _, err := s.Rootfs(name); err != nil {
		return err
	}
	users, err := s.users(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return core.Errorf(core.Conflict, "image %q is used by %d sliver(s): %s", name, len(users), strings.Join(users, ", "))
	}
	// Rename first so a crash never leaves a half-deleted image visible.
	tmp, err := os.MkdirTemp(s.dir, ".tmp-rm-")
	if err != nil {
		return fmt.Errorf("image %q: %w", name, err)
	}
	if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(tmp, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image %q: %w", name, err)
	}
	return os.RemoveAll(tmp)
}

// CleanStaging removes leftovers of imports and removals interrupted by a
// crash. Call it at startup, before any import.
func (s *Store) CleanStaging() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
				return fmt.Errorf("image store: %w", err)
			}
		}
	}
	return nil
}

// stage creates a staging directory with an empty rootfs and returns its
// path; commit renames it into place as name.
func (s *Store) stage() (string, error) {
	tmp, err := os.MkdirTemp(s.dir, ".tmp-import-")
	if err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Mkdir(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("image store: %w", err)
	}
	return tmp, nil
}

func (s *Store) commit(tmp, name string) error {
	dst := filepath.Join(s.dir, name)
	if _, err := os.Lstat(dst); err == nil {
		os.RemoveAll(tmp)
		return core.Errorf(core.Conflict, "image %q already exists", name)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("image %q: %w", name, err)
	}
	return nil
}
