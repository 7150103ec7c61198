package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
)

// runAs is the user the server runs as; the zero value is the current user.
type runAs struct {
	name     string
	uid, gid uint32
	switched bool
}

// serverUser picks the user to run PostgreSQL as: the current one, or when
// that is root (which PostgreSQL refuses), "postgres", else "nobody", else a
// "latch-pgtest" system user created for the purpose.
func serverUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return &runAs{}, nil
	}
	if !canSwitchUser {
		return nil, fmt.Errorf("pgtest: PostgreSQL cannot run as root and this platform cannot switch users; run the tests as another user")
	}
	for _, name := range []string{"postgres", "nobody"} {
		if r, err := lookupUser(name); err == nil {
			return r, nil
		}
	}
	const name = "latch-pgtest"
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: running as root and no postgres or nobody user; useradd %s: %w: %s", name, err, out)
	}
	return lookupUser(name)
}

func lookupUser(name string) (*runAs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pgtest: look up user %s: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user %s: gid %q: %w", name, u.Gid, err)
	}
	return &runAs{name: name, uid: uint32(uid), gid: uint32(gid), switched: true}, nil
}

// makeDir creates the cluster's directory, owned by the server's user and
// private to it, in a temporary directory that user can reach.
func makeDir(r *runAs) (string, error) {
	root := os.TempDir()
	if r.switched && !reachableByOthers(root) {
		root = "/tmp"
	}
	dir, err := os.MkdirTemp(root, "latch-pg-")
	if err != nil {
		return "", fmt.Errorf("pgtest: create cluster directory: %w", err)
	}
	if r.switched {
		if err := os.Chown(dir, int(r.uid), int(r.gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("pgtest: give %s to user %s: %w", dir, r.name, err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pgtest: chmod %s: %w", dir, err)
	}
	return dir, nil
}

// reachableByOthers reports whether every directory from / down to dir may
// be traversed by any user.
func reachableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
