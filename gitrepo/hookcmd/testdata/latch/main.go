// Command latch is a stand-in for the latch binary in tests: it has the
// `hook` command from hookcmd, and `connect SOCKET`, which relays standard
// input and output to a Unix socket so that tests can serve Git over a
// bidirectional stream, as SSH does. It first sends one line holding
// GIT_PROTOCOL, as an SSH client sends it in an environment request.
package main

import (
	"fmt"
	"io"
	"net"
	"os"

	"github.com/latchhq/latch/gitrepo/hookcmd"
	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "latch",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			// What a real server does at start: must not run for hooks.
			if os.Getenv("LATCH_TEST_FAIL_PRERUN") != "" {
				return fmt.Errorf("persistent pre-run ran")
			}
			return nil
		},
	}
	root.AddCommand(hookcmd.NewCommand())
	root.AddCommand(&cobra.Command{
		Use:  "connect SOCKET [ignored...]",
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := net.Dial("unix", args[0])
			if err != nil {
				return err
			}
			if _, err := io.WriteString(c, os.Getenv("GIT_PROTOCOL")+"\n"); err != nil {
				return err
			}
			done := make(chan struct{})
			go func() {
				io.Copy(os.Stdout, c)
				close(done)
			}()
			io.Copy(c, os.Stdin)
			c.(*net.UnixConn).CloseWrite()
			<-done
			return nil
		},
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "latch:", err)
		os.Exit(1)
	}
}
