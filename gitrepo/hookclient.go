package gitrepo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxPushOptions bounds how many push options a hook forwards.
const maxPushOptions = 1000

// RunHook is the hook process's side of the push seam (`latch hook
// pre-receive|post-receive`, run by git through the scripts HookServer
// writes). It reads the ref updates from stdin, sends them with the push id,
// the push options and the quarantine path from the environment (read with
// getenv) to the HookServer's socket, writes the server's lines to stderr
// (git shows them to the pusher as "remote: ...") and returns the exit code:
// 0 to accept, non-zero to refuse. Anything going wrong refuses the push.
func RunHook(ctx context.Context, hook string, stdin io.Reader, stderr io.Writer, getenv func(string) string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "latch: %s: %s\n", hook, sanitize(fmt.Sprintf(format, args...)))
		return 1
	}
	if hook != HookPreReceive && hook != HookPostReceive {
		return fail("unknown hook")
	}
	socket, id := getenv(EnvHookSocket), getenv(EnvPushID)
	if socket == "" || id == "" {
		return fail("this push did not come through latch (%s or %s not set)", EnvHookSocket, EnvPushID)
	}

	req := hookRequest{Hook: hook, PushID: id}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return fail("malformed input line %q", sc.Text())
		}
		req.Updates = append(req.Updates, [3]string{f[0], f[1], f[2]})
	}
	if err := sc.Err(); err != nil {
		return fail("reading ref updates: %v", err)
	}
	if n, err := strconv.Atoi(getenv("GIT_PUSH_OPTION_COUNT")); err == nil && n > 0 {
		if n > maxPushOptions {
			return fail("too many push options (%d, at most %d)", n, maxPushOptions)
		}
		for i := range n {
			req.Options = append(req.Options, getenv("GIT_PUSH_OPTION_"+strconv.Itoa(i)))
		}
	}
	if q := getenv("GIT_QUARANTINE_PATH"); q != "" {
		abs, err := filepath.Abs(q)
		if err != nil {
			return fail("quarantine path: %v", err)
		}
		req.Quarantine = abs
	}

	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fail("cannot reach the latch server: %v", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		return fail("talking to the latch server: %v", err)
	}
	var resp hookResponse
	if err := json.NewDecoder(io.LimitReader(conn, maxHookRequest)).Decode(&resp); err != nil {
		return fail("no answer from the latch server: %v", err)
	}
	var out strings.Builder
	for _, l := range resp.Lines {
		for _, part := range strings.Split(l, "\n") {
			out.WriteString(sanitize(part))
			out.WriteByte('\n')
		}
	}
	io.WriteString(stderr, out.String())
	if !resp.OK {
		return 1
	}
	return 0
}

// sanitize replaces control characters (but tab) so that messages cannot
// drive the pusher's terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return '?'
		}
		return r
	}, strings.TrimRight(s, "\r"))
}
