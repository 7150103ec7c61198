package hookcmd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/latchhq/latch/gitrepo"
)

func TestCommand(t *testing.T) {
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: t.TempDir(), Bin: "/bin/false", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	t.Setenv(gitrepo.EnvHookSocket, hs.SocketPath())
	t.Setenv(gitrepo.EnvPushID, "unknown")
	code := -1
	cmd := newCommand(func(c int) { code = c })
	if !cmd.Hidden || cmd.Use != "hook" {
		t.Fatalf("hook command: hidden %v use %q", cmd.Hidden, cmd.Use)
	}
	var out bytes.Buffer
	cmd.SetArgs([]string{"pre-receive"})
	cmd.SetIn(strings.NewReader(""))
	cmd.SetErr(&out)
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(out.String(), "does not know this push") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	cmd.SetArgs([]string{"pre-receive", "extra"})
	if err := cmd.Execute(); err == nil {
		t.Fatal("extra argument accepted")
	}
}
