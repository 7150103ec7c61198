package main

import (
	"net/http"
	"testing"
)

// The trusted origin is the base URL's as a browser writes it in Origin.
func TestConfigOrigin(t *testing.T) {
	for base, want := range map[string]string{
		"https://git.example.com":          "https://git.example.com",
		"https://Git.Example.COM/latch/":   "https://git.example.com",
		"HTTPS://git.example.com:443/x":    "https://git.example.com",
		"http://git.example.com:80":        "http://git.example.com",
		"http://git.example.com:8080/":     "http://git.example.com:8080",
		"https://git.example.com:80":       "https://git.example.com:80",
		"http://127.0.0.1:7990":            "http://127.0.0.1:7990",
		"http://[2001:DB8::1]:7990/latch":  "http://[2001:db8::1]:7990",
		"https://[2001:db8::1]:443/":       "https://[2001:db8::1]",
		"http://user@git.example.com/path": "http://git.example.com",
	} {
		c := config{HTTP: "127.0.0.1:7990", SSH: "off", BaseURL: base}
		if err := c.resolve(); err != nil {
			t.Fatalf("resolve %q: %v", base, err)
		}
		if got := c.origin(); got != want {
			t.Errorf("origin of %q = %q, want %q", base, got, want)
		}
		if err := http.NewCrossOriginProtection().AddTrustedOrigin(c.origin()); err != nil {
			t.Errorf("origin of %q: %v", base, err)
		}
	}
}
