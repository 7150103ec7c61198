package scancmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/latchhq/latch/scan"
)

// checkPath is the latch endpoint that tells whether credentials are live.
const checkPath = "/rest/latch/1.0/credentials/check"

// checkBatch is the most credentials sent in one request.
const checkBatch = 100

type checkRequest struct {
	Credentials []string `json:"credentials"`
}

type checkResult struct {
	ID     any    `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
}

type checkResponse struct {
	Results []checkResult `json:"results"`
}

// verify asks the latch server at base about every distinct latch credential
// among findings, in batches of checkBatch, and sets their Status and
// CredentialID. bearer, if not empty, is sent as a bearer token.
func verify(ctx context.Context, client *http.Client, base, bearer string, findings []scan.Finding) error {
	var secrets []string
	seen := map[string]bool{}
	for _, f := range findings {
		if f.Rule.Verifiable && !seen[f.Secret] {
			seen[f.Secret] = true
			secrets = append(secrets, f.Secret)
		}
	}
	results := map[string]checkResult{}
	endpoint := strings.TrimSuffix(base, "/") + checkPath
	for len(secrets) > 0 {
		batch := secrets[:min(checkBatch, len(secrets))]
		secrets = secrets[len(batch):]
		res, err := checkCredentials(ctx, client, endpoint, bearer, batch)
		if err != nil {
			return err
		}
		for i, s := range batch {
			results[s] = res[i]
		}
	}
	for i := range findings {
		if r, ok := results[findings[i].Secret]; ok && findings[i].Rule.Verifiable {
			findings[i].Status = r.Status
			findings[i].CredentialID = idString(r.ID)
		}
	}
	return nil
}

func checkCredentials(ctx context.Context, client *http.Client, endpoint, bearer string, batch []string) ([]checkResult, error) {
	body, err := json.Marshal(checkRequest{Credentials: batch})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("verify: reading answer of %s: %w", endpoint, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("verify: %s answered %s%s", endpoint, resp.Status, errorMessage(data))
	}
	var out checkResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("verify: decoding answer of %s: %w", endpoint, err)
	}
	if len(out.Results) != len(batch) {
		return nil, fmt.Errorf("verify: %s answered %d results for %d credentials", endpoint, len(out.Results), len(batch))
	}
	for i := range out.Results {
		switch out.Results[i].Status {
		case "active", "revoked", "expired", "unknown":
		default:
			out.Results[i].Status = "unknown"
		}
	}
	return out.Results, nil
}

// errorMessage extracts the message of a Data Center error envelope.
func errorMessage(data []byte) string {
	var env struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(data, &env) == nil && len(env.Errors) > 0 && env.Errors[0].Message != "" {
		return ": " + env.Errors[0].Message
	}
	return ""
}

func idString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
