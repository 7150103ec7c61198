package httpx_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/httpx"
)

// A body of the wrong shape is named as such, not as invalid JSON.
func TestDecodeJSONNamesTheWrongShape(t *testing.T) {
	for body, want := range map[string]string{
		`[]`:             "The request body must be a JSON object, not array.",
		`"x"`:            "The request body must be a JSON object, not string.",
		`{"names":"a"}`:  `Field "names" has the wrong type: expected []string.`,
		`{"names":[}`:    "The request body is not valid JSON.",
		`{"names":[]} 1`: "The request body must hold exactly one JSON value.",
		``:               "A JSON request body is required.",
	} {
		var v struct {
			Names []string `json:"names"`
		}
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		err := httpx.DecodeJSON(httptest.NewRecorder(), r, &v, false)
		var le *latch.Error
		if !errors.As(err, &le) || !errors.Is(err, latch.ErrInvalid) || le.Message != want {
			t.Errorf("body %q: got %v, want invalid input %q", body, err, want)
		}
	}
}
