package sshd

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/latchhq/latch/gitrepo"
)

// gitCommand is a parsed SSH exec request.
type gitCommand struct {
	service    gitrepo.Service
	projectKey string
	slug       string
}

var (
	projectKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$`)
	slugRE       = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,127}$`)
)

// commandError is a refusal with a one-line message for the client.
type commandError struct{ msg string }

func (e *commandError) Error() string { return e.msg }

func refuse(format string, args ...any) error {
	return &commandError{msg: fmt.Sprintf(format, args...)}
}

// parseCommand parses what git sends over SSH: "git-upload-pack '/prj/repo.git'"
// (and git-receive-pack, git-upload-archive). The path may be /{key}/{slug}.git,
// {key}/{slug}.git or /scm/{key}/{slug}.git, the ".git" optional.
func parseCommand(cmd string) (*gitCommand, error) {
	if len(cmd) > 1024 || strings.ContainsAny(cmd, "\x00\r\n") {
		return nil, refuse("latch: this command is not allowed: only git-upload-pack, git-receive-pack and git-upload-archive are served over SSH.")
	}
	verb, arg, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	var svc gitrepo.Service
	switch verb {
	case "git-upload-pack":
		svc = gitrepo.UploadPack
	case "git-receive-pack":
		svc = gitrepo.ReceivePack
	case "git-upload-archive":
		svc = gitrepo.UploadArchive
	default:
		return nil, refuse("latch: command %q is not allowed: only git-upload-pack, git-receive-pack and git-upload-archive are served over SSH.", truncate(verb, 64))
	}
	path, err := unquote(strings.TrimSpace(arg))
	if err != nil {
		return nil, err
	}
	key, slug, ok := splitRepoPath(path)
	if !ok {
		return nil, refuse("latch: %q is not a repository path: use /PROJECT/REPOSITORY.git.", truncate(path, 128))
	}
	return &gitCommand{service: svc, projectKey: key, slug: slug}, nil
}

// unquote undoes the shell quoting git applies to the path: one word, either
// bare (no shell metacharacters) or single-quoted, with '\” and \! escapes
// as git's sq_quote writes them.
func unquote(s string) (string, error) {
	if s == "" {
		return "", refuse("latch: a repository path is required: use /PROJECT/REPOSITORY.git.")
	}
	if s[0] != '\'' {
		if strings.ContainsAny(s, " \t'\"\\$`;&|<>(){}*?[]~!#") {
			return "", refuse("latch: the repository path is not allowed: use /PROJECT/REPOSITORY.git.")
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\'' {
			return "", refuse("latch: the repository path is not quoted correctly.")
		}
		end := strings.IndexByte(s[i+1:], '\'')
		if end < 0 {
			return "", refuse("latch: the repository path is not quoted correctly.")
		}
		b.WriteString(s[i+1 : i+1+end])
		i += end + 2
		// Between quoted parts only git's escapes may stand: \' and \!.
		for i < len(s) && s[i] == '\\' {
			if i+1 >= len(s) || (s[i+1] != '\'' && s[i+1] != '!') {
				return "", refuse("latch: the repository path is not quoted correctly.")
			}
			b.WriteByte(s[i+1])
			i += 2
		}
	}
	return b.String(), nil
}

// splitRepoPath maps a repository path to a project key and slug.
func splitRepoPath(p string) (key, slug string, ok bool) {
	p = strings.TrimPrefix(p, "/")
	if rest, found := strings.CutPrefix(p, "scm/"); found {
		p = rest
	}
	key, slug, found := strings.Cut(p, "/")
	if !found || strings.Contains(slug, "/") {
		return "", "", false
	}
	slug = strings.TrimSuffix(slug, ".git")
	if !projectKeyRE.MatchString(key) || !slugRE.MatchString(slug) || slug == "." || slug == ".." {
		return "", "", false
	}
	return key, slug, true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
