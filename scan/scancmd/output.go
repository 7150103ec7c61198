package scancmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchhq/latch/scan"
)

// report renders findings.
type report struct {
	findings []scan.Finding
	stats    scan.Stats
	errors   []error
	show     bool // print secrets in full
	history  bool
}

func (r *report) secret(f *scan.Finding) string {
	if r.show {
		return f.Secret
	}
	return f.Redacted()
}

// text writes one line per finding, and for a history scan a second line
// with the commit:
//
//	config/app.env:3:14: latch-personal-token latp_…x9Qa fingerprint=… status=active
//	    commit 1f2e3d… by Jane Doe <jane@example.com> on 2024-05-01T10:00:00Z, at HEAD: no
func (r *report) text(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i := range r.findings {
		f := &r.findings[i]
		fmt.Fprintf(bw, "%s:%d:%d: %s %s", f.Path, f.Line, f.Column, f.Rule.ID, r.secret(f))
		if f.Key != "" {
			fmt.Fprintf(bw, " key=%s", f.Key)
		}
		if f.PublicKey != "" {
			fmt.Fprintf(bw, " public-key=%s", f.PublicKey)
		}
		if f.Encrypted {
			bw.WriteString(" encrypted")
		}
		fmt.Fprintf(bw, " fingerprint=%s", f.Fingerprint)
		if f.Status != "" {
			fmt.Fprintf(bw, " status=%s", f.Status)
		}
		bw.WriteString("\n")
		if o := f.Origin; o != nil {
			at := "no"
			if o.InHEAD {
				at = "yes"
			}
			fmt.Fprintf(bw, "    commit %s by %s <%s> on %s, at HEAD: %s\n", o.Commit, o.Author, o.Email,
				o.Date.UTC().Format(time.RFC3339), at)
		}
	}
	return bw.Flush()
}

// jsonFinding is the JSON form of a finding.
type jsonFinding struct {
	Rule         string `json:"rule"`
	Name         string `json:"name"`
	Secret       string `json:"secret"`
	Redacted     bool   `json:"redacted"`
	Key          string `json:"key,omitempty"`
	Kind         string `json:"kind,omitempty"`
	PublicKey    string `json:"publicKey,omitempty"`
	Encrypted    bool   `json:"encrypted,omitempty"`
	Path         string `json:"path"`
	Line         int    `json:"line"`
	Column       int    `json:"column"`
	EndLine      int    `json:"endLine"`
	EndColumn    int    `json:"endColumn"`
	Offset       int64  `json:"offset"`
	Fingerprint  string `json:"fingerprint"`
	Commit       string `json:"commit,omitempty"`
	Author       string `json:"author,omitempty"`
	Email        string `json:"email,omitempty"`
	Date         string `json:"date,omitempty"`
	Blob         string `json:"blob,omitempty"`
	InHEAD       *bool  `json:"inHead,omitempty"`
	Status       string `json:"status,omitempty"`
	CredentialID string `json:"credentialId,omitempty"`
}

type jsonReport struct {
	Findings []jsonFinding `json:"findings"`
	Stats    struct {
		Files   int64  `json:"files"`
		Bytes   int64  `json:"bytes"`
		Skipped int64  `json:"skipped"`
		Commits *int64 `json:"commits,omitempty"` // history scans only
	} `json:"stats"`
	Errors []string `json:"errors,omitempty"`
}

func (r *report) json(w io.Writer) error {
	out := jsonReport{Findings: []jsonFinding{}}
	for i := range r.findings {
		f := &r.findings[i]
		j := jsonFinding{
			Rule: f.Rule.ID, Name: f.Rule.Name, Secret: r.secret(f), Redacted: !r.show, Key: f.Key,
			Kind: string(f.Kind), PublicKey: f.PublicKey, Encrypted: f.Encrypted, Path: f.Path,
			Line: f.Line, Column: f.Column, EndLine: f.EndLine, EndColumn: f.EndColumn, Offset: f.Offset,
			Fingerprint: f.Fingerprint, Status: f.Status, CredentialID: f.CredentialID,
		}
		if o := f.Origin; o != nil {
			j.Commit, j.Author, j.Email, j.Blob = o.Commit, o.Author, o.Email, o.Blob
			j.Date = o.Date.UTC().Format(time.RFC3339)
			in := o.InHEAD
			j.InHEAD = &in
		}
		out.Findings = append(out.Findings, j)
	}
	out.Stats.Files, out.Stats.Bytes, out.Stats.Skipped = r.stats.Files, r.stats.Bytes, r.stats.Skipped
	if r.history {
		commits := r.stats.Commits
		out.Stats.Commits = &commits
	}
	for _, e := range r.errors {
		out.Errors = append(out.Errors, e.Error())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// SARIF 2.1.0, the subset latch writes.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	// fingerprintKey names latch's fingerprint in partialFingerprints.
	fingerprintKey = "latchSecret/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool     `json:"tool"`
	ColumnKind string        `json:"columnKind"`
	Results    []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration map[string]any `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
	EndLine     int `json:"endLine"`
	EndColumn   int `json:"endColumn"`
}

// sarifURI turns a path into a relative URI reference.
func sarifURI(p string) string {
	if p == "-" {
		return "stdin"
	}
	if filepath.IsAbs(p) {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(p)}
		return u.String()
	}
	u := url.URL{Path: strings.TrimPrefix(filepath.ToSlash(p), "./")}
	return u.EscapedPath()
}

func (r *report) sarif(w io.Writer, rules []*scan.Rule) error {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           "latch scan",
			InformationURI: "https://github.com/latchhq/latch/blob/main/docs/scanning.md",
		}},
		ColumnKind: "unicodeCodePoints",
		Results:    []sarifResult{},
	}
	index := map[string]int{}
	for i, rl := range rules {
		index[rl.ID] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:                   rl.ID,
			Name:                 sarifName(rl.ID),
			ShortDescription:     sarifText{rl.Name},
			FullDescription:      sarifText{rl.Description},
			Help:                 sarifText{"Revoke or rotate the credential, then remove it from the code and its history. " + rl.Description},
			DefaultConfiguration: map[string]any{"level": "error"},
			Properties: map[string]any{
				"tags":              []string{"security", "secret"},
				"precision":         rl.Precision,
				"security-severity": "9.0",
			},
		})
	}
	for i := range r.findings {
		f := &r.findings[i]
		msg := fmt.Sprintf("%s found: %s", f.Rule.Name, r.secret(f))
		if f.PublicKey != "" {
			msg += " (public key " + f.PublicKey + ")"
		}
		if f.Status != "" {
			msg += ", status " + f.Status
		}
		res := sarifResult{
			RuleID:    f.Rule.ID,
			RuleIndex: index[f.Rule.ID],
			Level:     "error",
			Message:   sarifText{msg},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: sarifURI(f.Path)},
				Region:           sarifRegion{StartLine: f.Line, StartColumn: f.Column, EndLine: f.EndLine, EndColumn: f.EndColumn},
			}}},
			PartialFingerprints: map[string]string{fingerprintKey: f.Fingerprint},
		}
		props := map[string]any{}
		if f.Status != "" {
			props["status"] = f.Status
		}
		if f.Key != "" {
			props["key"] = f.Key
		}
		if o := f.Origin; o != nil {
			props["commitSha"] = o.Commit
			props["author"] = o.Author
			props["email"] = o.Email
			props["date"] = o.Date.UTC().Format(time.RFC3339)
			props["inHead"] = o.InHEAD
		}
		if len(props) > 0 {
			res.Properties = props
		}
		run.Results = append(run.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

// sarifName turns a rule ID into the PascalCase name SARIF viewers show.
func sarifName(id string) string {
	var b strings.Builder
	for _, p := range strings.Split(id, "-") {
		if p != "" {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}
