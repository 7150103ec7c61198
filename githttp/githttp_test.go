package githttp

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want target
		ok   bool
	}{
		{"/scm/prj/demo-repo.git/info/refs", target{"prj", "demo-repo", "info/refs"}, true},
		{"/scm/PRJ/demo-repo/git-upload-pack", target{"PRJ", "demo-repo", "git-upload-pack"}, true},
		{"/prj/demo-repo.git/git-receive-pack", target{"prj", "demo-repo", "git-receive-pack"}, true},
		{"/prj/demo-repo/info/refs", target{}, false}, // Cloud form needs .git
		{"/scm/prj/../x.git/info/refs", target{}, false},
		{"/scm/prj/..git/info/refs", target{}, false},
		{"/scm/1prj/r.git/info/refs", target{}, false},
		{"/scm/prj/a/b.git/info/refs", target{}, false},
		{"/scm/prj/r.git/objects/info/packs", target{}, false},
		{"/scm/prj/r.git", target{}, false},
		{"/scm//r.git/info/refs", target{}, false},
		{"/scm/prj/r%2F.git/info/refs", target{}, false},
	} {
		got, ok := parsePath(tc.path)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/scm/prj/r.git/info/refs", "/p/r.git/git-upload-pack", "/scm/../../etc/passwd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		tg, ok := parsePath(path)
		if !ok {
			return
		}
		if !keyRE.MatchString(tg.projectKey) || !slugRE.MatchString(tg.slug) || strings.Contains(tg.slug, "/") || tg.slug == ".." {
			t.Fatalf("parsePath(%q) accepted %+v", path, tg)
		}
	})
}
