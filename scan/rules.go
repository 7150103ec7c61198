package scan

import (
	"strings"

	"github.com/latchhq/latch/token"
)

// Rule is one detector: a kind of credential, how it is found and how a
// candidate is validated. Rules are built by this package (DefaultRules,
// LatchRules, RuleByID); their exported fields describe them for reports and
// documentation.
type Rule struct {
	// ID names the rule in every output and in fingerprints; it never changes.
	ID string
	// Name is a short human description of the credential.
	Name string
	// Description says what the credential is and how the rule finds it.
	Description string
	// Prefix is the literal the credential starts with, empty if none.
	Prefix string
	// Keywords are words (matched case-insensitively) that must appear near
	// a candidate before it is considered, for formats with no prefix.
	Keywords []string
	// Checksum describes the local pre-validation of a candidate.
	Checksum string
	// Paired rules report a credential only when its two parts are found
	// close to each other.
	Paired bool
	// Verifiable rules can be checked against a latch server (--verify).
	Verifiable bool
	// Kind is the latch credential kind for latch rules, empty otherwise.
	Kind token.Kind
	// Precision is the expected precision in SARIF terms: "very-high",
	// "high" or "medium".
	Precision string
	// FalsePositives states the expected false-positive rate.
	FalsePositives string

	det detector
}

// Validate reports whether secret, as found in a Finding of this rule
// (Finding.Secret), passes the rule's validation. For a paired rule it checks
// the secret part only.
func (r *Rule) Validate(secret string) bool { return r.det.validate(secret) }

// Redact returns the form of secret that may be printed: its prefix and its
// last four characters for prefixed credentials, the last four only for the
// others, the header line only for private keys.
func (r *Rule) Redact(secret string) string { return r.det.redact(secret) }

// detector is the matching side of a rule. A detector is either anchored on
// its literal prefixes (prefixDetector) or gated by keywords
// (regionDetector).
type detector interface {
	validate(secret string) bool
	redact(secret string) string
}

// prefixDetector examines the text at each occurrence of one of its literal
// prefixes.
type prefixDetector interface {
	detector
	prefixes() []string
	// at examines data at start, where one of the prefixes begins.
	at(data []byte, start int) (match, bool)
}

// regionDetector examines the lines around each occurrence of one of its
// keywords.
type regionDetector interface {
	detector
	// keywords are lower-case and matched case-insensitively.
	keywords() []string
	// context is how many lines before and after a keyword are examined.
	context() int
	// region examines data[lo:hi], a range of whole lines, and calls emit
	// for every credential in it.
	region(data []byte, lo, hi int, emit func(match))
}

// match is a validated candidate, before positions and fingerprints.
type match struct {
	rule       *Rule
	start, end int // the secret
	keyStart   int // the paired identifier, when keyEnd > keyStart
	keyEnd     int
	kind       token.Kind
	publicKey  string
	encrypted  bool
	canonical  string // fingerprint input when it is not the secret itself
}

var latchRuleMeta = map[token.Kind][2]string{
	token.Personal:      {"latch-personal-token", "latch personal HTTP access token"},
	token.Repository:    {"latch-repository-token", "latch project or repository HTTP access token"},
	token.API:           {"latch-api-token", "latch scoped API token"},
	token.OAuthAccess:   {"latch-oauth-access-token", "latch OAuth access token"},
	token.OAuthRefresh:  {"latch-oauth-refresh-token", "latch OAuth refresh token"},
	token.OAuthConsumer: {"latch-oauth-consumer-secret", "latch OAuth consumer secret"},
}

var (
	latchRules   []*Rule
	defaultRules []*Rule
	rulesByID    = map[string]*Rule{}
)

func init() {
	for _, k := range token.Kinds {
		meta, ok := latchRuleMeta[k]
		if !ok {
			meta = [2]string{"latch-token-" + string(k), "latch " + string(k) + " credential"}
		}
		latchRules = append(latchRules, &Rule{
			ID:   meta[0],
			Name: meta[1],
			Description: "A " + meta[1] + ": `" + string(k) + "_` followed by 32 base62 characters and a " +
				"6-character base62 CRC32 of everything before it. Every candidate is checked with token.Parse.",
			Prefix:         string(k) + "_",
			Checksum:       "CRC32 (IEEE) of prefix, underscore and random part, 6 base62 digits",
			Verifiable:     true,
			Kind:           k,
			Precision:      "very-high",
			FalsePositives: "none from random text: a candidate passes the checksum with probability 62^-6 (about 1.8e-11)",
			det:            latchDetector{kind: k},
		})
	}
	defaultRules = append(defaultRules, latchRules...)
	defaultRules = append(defaultRules,
		&Rule{
			ID:   "bitbucket-dc-token",
			Name: "Bitbucket Data Center HTTP access token",
			Description: "`BBDC-` followed by the 44-character base64 encoding of `<12-digit id>:<20 random bytes>`. " +
				"The body must decode to exactly that shape.",
			Prefix:         "BBDC-",
			Checksum:       "base64 body decodes to 12 ASCII digits, ':' and 20 bytes",
			Precision:      "very-high",
			FalsePositives: "none from random text: 12 leading decoded digits occur by chance with probability (10/256)^12",
			det:            bbdcDetector{},
		},
		&Rule{
			ID:   "bitbucket-dc-token-unprefixed",
			Name: "Bitbucket Data Center HTTP access token (older, unprefixed)",
			Description: "A 44-character base64 string decoding to `<12-digit id>:<20 random bytes>`, " +
				"reported only on the line of, or a line next to, a Bitbucket keyword.",
			Keywords:       []string{"bitbucket", "bbdc", "stash"},
			Checksum:       "base64 body decodes to 12 ASCII digits, ':' and 20 bytes",
			Precision:      "very-high",
			FalsePositives: "none from random text (same decoded-shape check as the prefixed form)",
			det:            bbdcUnprefixedDetector{},
		},
		&Rule{
			ID:   "bitbucket-app-password",
			Name: "Bitbucket Cloud app password",
			Description: "`ATBB` followed by 24 alphanumerics and 8 upper-case hexadecimal digits holding the CRC32 " +
				"of the first 28 characters.",
			Prefix:         "ATBB",
			Checksum:       "CRC32 (IEEE) of the first 28 characters, 8 upper-case hex digits",
			Precision:      "very-high",
			FalsePositives: "none from random text: the checksum passes by chance with probability 2^-32",
			det:            atbbDetector{},
		},
		&Rule{
			ID:   "atlassian-api-token",
			Name: "Atlassian API token",
			Description: "`ATATT3` followed by a base64url body, `=` and 8 upper-case hexadecimal digits holding the " +
				"CRC32 of everything before them (prefix, body and `=`); 192 characters in practice.",
			Prefix:         "ATATT3",
			Checksum:       "CRC32 (IEEE) of everything before the last 8 characters, 8 upper-case hex digits",
			Precision:      "very-high",
			FalsePositives: "none from random text: the checksum passes by chance with probability 2^-32",
			det:            atlassianDetector{prefix: "ATATT3"},
		},
		&Rule{
			ID:   "bitbucket-access-token",
			Name: "Bitbucket Cloud repository, project or workspace access token",
			Description: "`ATCTT3` followed by a base64url body, `=` and 8 upper-case hexadecimal digits holding the " +
				"CRC32 of everything before them, as for Atlassian API tokens.",
			Prefix:         "ATCTT3",
			Checksum:       "CRC32 (IEEE) of everything before the last 8 characters, 8 upper-case hex digits",
			Precision:      "very-high",
			FalsePositives: "none from random text: the checksum passes by chance with probability 2^-32",
			det:            atlassianDetector{prefix: "ATCTT3"},
		},
		&Rule{
			ID:   "bitbucket-oauth-consumer",
			Name: "Bitbucket Cloud OAuth consumer key and secret",
			Description: "An 18-character alphanumeric key and a 32-character alphanumeric secret, both random-looking, " +
				"within 3 lines of each other and 5 lines of the word Bitbucket, each on a line naming it " +
				"(key/client/consumer/id, secret/pass) or written together as key:secret.",
			Keywords:       []string{"bitbucket"},
			Checksum:       "none: mixed case, not hexadecimal, class changes in at least a third of adjacent characters",
			Paired:         true,
			Precision:      "medium",
			FalsePositives: "low: needs the keyword, both parts, their line labels and random-looking values",
			det:            oauthPairDetector{},
		},
		&Rule{
			ID:   "ssh-private-key",
			Name: "Private SSH key",
			Description: "A PEM block `-----BEGIN (OPENSSH |RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----` with its END " +
				"line, also inside string literals with `\\n` escapes. The body must decode and parse; the public " +
				"key's SHA256 fingerprint is reported when derivable.",
			Prefix:         "-----BEGIN ",
			Checksum:       "base64 body decodes to an OpenSSH key or a complete DER structure",
			Precision:      "high",
			FalsePositives: "none from placeholders or truncated examples (they do not decode); real test-fixture keys are reported",
			det:            privateKeyDetector{},
		},
	)
	for _, r := range defaultRules {
		rulesByID[r.ID] = r
	}
}

// DefaultRules returns every rule, latch rules first, in a stable order.
func DefaultRules() []*Rule { return append([]*Rule(nil), defaultRules...) }

// LatchRules returns the rules for latch's own credentials, one per kind in
// token.Kinds: the rules a latch server needs for push protection.
func LatchRules() []*Rule { return append([]*Rule(nil), latchRules...) }

// RuleByID returns the rule with the given ID, or nil.
func RuleByID(id string) *Rule { return rulesByID[id] }

// redactPrefixed shows prefix and the last four characters.
func redactPrefixed(secret, prefix string) string {
	if len(secret) < len(prefix)+8 || !strings.HasPrefix(secret, prefix) {
		return redactTail(secret)
	}
	return prefix + "…" + secret[len(secret)-4:]
}

// redactTail shows the last four characters only.
func redactTail(secret string) string {
	if len(secret) <= 8 {
		return strings.Repeat("*", len(secret))
	}
	return "…" + secret[len(secret)-4:]
}
