package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// config is the configuration of `latch serve`.
type config struct {
	Data     string
	HTTP     string
	SSH      string
	BaseURL  string
	DB       string
	SMTP     string
	MailFrom string
	// GitMax is how many git processes may serve clones, fetches and
	// pushes at once (0: 4 per CPU, at least 8); over it requests wait up
	// to gitQueueWait.
	GitMax int
}

// gitQueueWait is how long a clone, fetch or push waits for a git process
// slot before it is refused, as Data Center's SCM throttle waits 300 s.
const gitQueueWait = 5 * time.Minute

// bindFlags registers the serve flags; each also reads an environment
// variable when the flag is not given.
func (c *config) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Data, "data", "./latch-data", "data directory: SQLite database, repositories, SSH host key, server secret [LATCH_DATA]")
	fs.StringVar(&c.HTTP, "http", "127.0.0.1:7990", "HTTP listen address [LATCH_HTTP]")
	fs.StringVar(&c.SSH, "ssh", "127.0.0.1:7999", "SSH listen address, or off [LATCH_SSH]")
	fs.StringVar(&c.BaseURL, "base-url", "", "public base URL used in links and clone URLs (default http:// + the HTTP address) [LATCH_BASE_URL]")
	fs.StringVar(&c.DB, "db", "", "database URL: default the SQLite file in the data directory; postgres://… selects PostgreSQL [LATCH_DB]")
	fs.StringVar(&c.SMTP, "smtp", "", "SMTP server HOST:PORT (STARTTLS when offered; port 465 speaks TLS from the start; LATCH_SMTP_USERNAME and LATCH_SMTP_PASSWORD authenticate); without it mail is logged, not sent [LATCH_SMTP]")
	fs.StringVar(&c.MailFrom, "mail-from", "latch@localhost", "sender address of mail [LATCH_MAIL_FROM]")
	fs.IntVar(&c.GitMax, "git-max-concurrent", 0, "most git processes serving clones, fetches and pushes at once; more wait up to 5 minutes (default 4 per CPU, at least 8) [LATCH_GIT_MAX_CONCURRENT]")
}

var envOf = map[string]string{
	"data": "LATCH_DATA", "http": "LATCH_HTTP", "ssh": "LATCH_SSH", "base-url": "LATCH_BASE_URL",
	"db": "LATCH_DB", "smtp": "LATCH_SMTP", "mail-from": "LATCH_MAIL_FROM", "git-max-concurrent": "LATCH_GIT_MAX_CONCURRENT",
}

// applyEnv sets every flag that was not given on the command line from its
// environment variable, when that is set.
func applyEnv(fs *pflag.FlagSet) error {
	for flag, env := range envOf {
		if fs.Changed(flag) {
			continue
		}
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(flag, v); err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
		}
	}
	return nil
}

// resolve validates the configuration and fills derived defaults.
func (c *config) resolve() error {
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("--http %q: %w", c.HTTP, err)
	}
	if c.SSH != "off" {
		if _, _, err := net.SplitHostPort(c.SSH); err != nil {
			return fmt.Errorf("--ssh %q: %w", c.SSH, err)
		}
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.HTTP
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--base-url %q: must be an absolute http or https URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	switch {
	case c.GitMax < 0:
		return fmt.Errorf("--git-max-concurrent %d: must be positive", c.GitMax)
	case c.GitMax == 0:
		c.GitMax = max(8, 4*runtime.NumCPU())
	}
	return nil
}

// sshHostPort is the host:port that SSH clone URLs name: the SSH listen
// address, with the base URL's host when listening on all interfaces.
func (c *config) sshHostPort() string {
	if c.SSH == "off" {
		return ""
	}
	host, port, _ := net.SplitHostPort(c.SSH)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		u, _ := url.Parse(c.BaseURL)
		host = u.Hostname()
	}
	return net.JoinHostPort(host, port)
}

// origin is the base URL's origin as browsers send it: scheme and host in
// lower case, without the scheme's default port or the path a proxy may
// serve latch under.
func (c *config) origin() string {
	u, _ := url.Parse(c.BaseURL)
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	return scheme + "://" + host
}
