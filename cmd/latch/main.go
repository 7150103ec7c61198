// Command latch is a self-hosted Git server whose heart is its credentials.
//
//	latch serve   run the server
//	latch scan    find leaked credentials in files or Git history
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/gitrepo/hookcmd"
	"github.com/latchhq/latch/scan/scancmd"
)

func main() {
	root := &cobra.Command{
		Use:           "latch",
		Short:         "A self-hosted Git server whose heart is its credentials",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), scancmd.NewCommand(), hookcmd.NewCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "latch:", err)
		os.Exit(exitCode(err))
	}
}

// exitCoder is implemented by errors that carry their own exit status.
type exitCoder interface{ ExitCode() int }

func exitCode(err error) int {
	if e, ok := err.(exitCoder); ok {
		return e.ExitCode()
	}
	return 1
}
