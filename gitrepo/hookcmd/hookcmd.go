// Package hookcmd implements `latch hook pre-receive` and `latch hook
// post-receive`: the commands the Git hooks installed by gitrepo.HookServer
// run inside every push. They only relay the push to the running latch
// server over its Unix socket (see gitrepo.RunHook): no database, no server
// configuration, so that they start and finish fast.
package hookcmd

import (
	"context"
	"os"

	"github.com/latchhq/latch/gitrepo"
	"github.com/spf13/cobra"
)

// NewCommand returns the hidden `hook` command with its `pre-receive` and
// `post-receive` subcommands, to be added to latch's root command. A
// subcommand exits the process with status 1 when the push is refused (after
// writing the reasons to standard error, which git shows to the pusher), so
// that nothing else is printed. It overrides the root's persistent pre-run
// hooks with a no-op, so that nothing the server needs runs in a hook.
func NewCommand() *cobra.Command {
	return newCommand(os.Exit)
}

func newCommand(exit func(int)) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "hook",
		Short:  "Run a Git hook inside a push (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		// Shadow the root's persistent hooks: a hook must not open the
		// database or read the server's configuration.
		PersistentPreRunE:  func(*cobra.Command, []string) error { return nil },
		PersistentPostRunE: func(*cobra.Command, []string) error { return nil },
		SilenceUsage:       true,
		RunE: func(c *cobra.Command, _ []string) error {
			return c.Help()
		},
	}
	for _, name := range []string{gitrepo.HookPreReceive, gitrepo.HookPostReceive} {
		cmd.AddCommand(&cobra.Command{
			Use:          name,
			Short:        "Run the " + name + " hook (internal)",
			Args:         cobra.NoArgs,
			SilenceUsage: true,
			RunE: func(c *cobra.Command, _ []string) error {
				ctx := c.Context()
				if ctx == nil {
					ctx = context.Background()
				}
				if code := gitrepo.RunHook(ctx, name, c.InOrStdin(), c.ErrOrStderr(), os.Getenv); code != 0 {
					exit(code)
				}
				return nil
			},
		})
	}
	return cmd
}
