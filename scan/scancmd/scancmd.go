// Package scancmd is the `latch scan` command: it scans files, standard
// input or the whole history of a Git repository for leaked credentials with
// package scan, optionally asks a latch server whether the latch credentials
// found are live, and reports in text, JSON or SARIF 2.1.0.
//
// Exit status: 0 when nothing was found, 1 when credentials were found, 2 on
// error (including a file that could not be read, even if the rest was
// scanned). The command ends the process with that status itself, so that it
// holds whatever the caller of Execute does with errors.
package scancmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/scan"
)

// exit ends the process; tests replace it.
var exit = os.Exit

// Exit statuses.
const (
	exitClean    = 0
	exitFindings = 1
	exitError    = 2
)

type options struct {
	format      string
	git         string
	since       string
	maxSize     sizeValue
	config      string
	showSecrets bool
	verify      string
	output      string
	workers     int
	quiet       bool
}

// NewCommand returns the `latch scan` command.
func NewCommand() *cobra.Command {
	o := &options{maxSize: scan.DefaultMaxSize}
	cmd := &cobra.Command{
		Use:   "scan [PATH…|-]",
		Short: "Find leaked credentials in files, standard input or Git history",
		Long: `Scan files and directories (default: the current directory), standard input ("-"),
or with --git every blob in the history of a repository, for leaked credentials:
latch tokens of every kind (prefix and CRC32 checksum), Bitbucket Data Center
tokens, Bitbucket app passwords, Atlassian API and Bitbucket access tokens,
Bitbucket OAuth consumer key/secret pairs and private SSH keys.

Secrets are shown as their prefix and last four characters unless --show-secrets.
A line containing "latch:allow" is not reported; a .latchscan.toml file at the
scanned root (or --config) lists paths (globs) and finding fingerprints to ignore.

Exit status: 0 no findings, 1 findings, 2 error.`,
		Example: `  latch scan .
  git diff --cached | latch scan -
  latch scan --git /srv/repos/app.git --since v1.4.0 --format sarif > leaks.sarif
  latch scan --verify https://latch.example.com --show-secrets ./deploy`,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			code := run(cmd.Context(), o, args, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != exitClean {
				exit(code)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(c.ErrOrStderr(), "latch scan: %v\nRun 'latch scan --help' for usage.\n", err)
		exit(exitError)
		return err
	})
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "text", "output format: text, json or sarif")
	f.StringVar(&o.git, "git", "", "scan the whole history of the Git repository `DIR` (every unique blob once)")
	f.StringVar(&o.since, "since", "", "with --git, scan only commits not reachable from `REV` (REV..--all)")
	f.Var(&o.maxSize, "max-size", "skip files and blobs larger than `SIZE` (bytes, or with a unit: 512KB, 10MB, 1GiB; 0 for no limit)")
	f.StringVar(&o.config, "config", "", "allowlist `FILE` (default: .latchscan.toml at each scanned root)")
	f.BoolVar(&o.showSecrets, "show-secrets", false, "print secrets in full instead of prefix and last four characters")
	f.StringVar(&o.verify, "verify", "", "ask the latch server at `URL` whether the latch credentials found are active")
	f.StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of standard output")
	f.IntVar(&o.workers, "workers", runtime.GOMAXPROCS(0), "files or blobs scanned in parallel")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "do not print the summary line on standard error")
	return cmd
}

// run performs a scan and returns the exit status.
func run(ctx context.Context, o *options, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "latch scan: %v\n", err)
		return exitError
	}
	start := time.Now()
	switch o.format {
	case "text", "json", "sarif":
	default:
		return fail(fmt.Errorf("unknown format %q (want text, json or sarif)", o.format))
	}
	if o.since != "" && o.git == "" {
		return fail(errors.New("--since needs --git"))
	}
	if o.git != "" && len(args) > 0 {
		return fail(errors.New("--git takes no PATH arguments"))
	}
	var cfg *scan.Config
	if o.config != "" {
		var err error
		if cfg, err = scan.LoadConfig(o.config); err != nil {
			return fail(err)
		}
	}
	opt := scan.Options{MaxSize: int64(o.maxSize), Workers: o.workers, Config: cfg}
	if o.maxSize == 0 {
		opt.MaxSize = -1
	}
	s := scan.NewScanner()
	res := &scan.Result{}
	var err error
	history := o.git != ""
	switch {
	case history:
		res, err = s.ScanHistory(ctx, o.git, scan.HistoryOptions{Options: opt, Since: o.since})
	default:
		var paths []string
		stdinToo := false
		for _, a := range args {
			if a == "-" {
				stdinToo = true
			} else {
				paths = append(paths, a)
			}
		}
		if len(args) == 0 {
			paths = []string{"."}
		}
		if len(paths) > 0 {
			res, err = s.ScanPaths(ctx, paths, opt)
		}
		if stdinToo && err == nil {
			in := &countingReader{r: stdin}
			found, rerr := s.ScanReader(in, "-")
			if rerr != nil {
				res.Errors = append(res.Errors, rerr)
			}
			res.Findings = append(res.Findings, cfg.Filter(found, "")...)
			res.Stats.Files++
			res.Stats.Bytes += in.n
		}
	}
	if err != nil {
		return fail(err)
	}
	code := exitClean
	if len(res.Findings) > 0 {
		code = exitFindings
	}
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "latch scan: %v\n", e)
		code = exitError
	}
	if o.verify != "" {
		client := &http.Client{Timeout: 30 * time.Second}
		if verr := verify(ctx, client, o.verify, os.Getenv("LATCH_TOKEN"), res.Findings); verr != nil {
			fmt.Fprintf(stderr, "latch scan: %v\n", verr)
			code = exitError
		}
	}
	out := stdout
	if o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return fail(fmt.Errorf("creating report: %w", err))
		}
		defer f.Close()
		out = f
	}
	rep := report{findings: res.Findings, stats: res.Stats, errors: res.Errors, show: o.showSecrets, history: history}
	switch o.format {
	case "text":
		err = rep.text(out)
	case "json":
		err = rep.json(out)
	case "sarif":
		err = rep.sarif(out, s.Rules())
	}
	if err != nil {
		return fail(fmt.Errorf("writing report: %w", err))
	}
	if f, ok := out.(*os.File); ok && o.output != "" {
		if err := f.Close(); err != nil {
			return fail(fmt.Errorf("writing report: %w", err))
		}
	}
	if !o.quiet {
		what := "files"
		if history {
			what = fmt.Sprintf("blobs from %d commits", res.Stats.Commits)
		}
		fmt.Fprintf(stderr, "latch scan: %d finding%s in %d %s (%s), %d skipped, %s\n",
			len(res.Findings), plural(len(res.Findings)), res.Stats.Files, what, humanBytes(res.Stats.Bytes),
			res.Stats.Skipped, fmt.Sprintf("%.2fs", time.Since(start).Seconds()))
	}
	return code
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// sizeValue is a byte count flag accepting units (KB, MB, GB powers of 1000;
// KiB, MiB, GiB and K, M, G powers of 1024).
type sizeValue int64

// String returns the size in bytes.
func (v *sizeValue) String() string { return fmt.Sprint(int64(*v)) }

// Type names the flag's value in usage.
func (v *sizeValue) Type() string { return "size" }

// Set parses a size such as 1048576, 512KB or 10MiB.
func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscan(t, &n); err != nil || n < 0 || fmt.Sprint(n) != t {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
