package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

func TestValidate(t *testing.T) {
	id := token.Identity{Endpoint: "hvac-1", DeviceID: "0123456789abcdef0123456789abcdef"}
	base := token.Claims{
		Audience:  []string{"ep:hvac-1"},
		Expiry:    testNow.Add(time.Hour),
		NotBefore: testNow.Add(-time.Hour),
	}
	leeway := 300 * time.Second
	for _, tc := range []struct {
		name string
		mod  func(c *token.Claims)
		now  time.Time
		want error
	}{
		{"valid", nil, testNow, nil},
		{"device id", func(c *token.Claims) { c.Audience = []string{"id:" + id.DeviceID} }, testNow, nil},
		{"legacy endpoint prefix", func(c *token.Claims) { c.Audience = []string{"endpoint-name:hvac-1"} }, testNow, nil},
		{"legacy device prefix", func(c *token.Claims) { c.Audience = []string{"device-id:" + id.DeviceID} }, testNow, nil},
		{"one of several", func(c *token.Claims) { c.Audience = []string{"ep:hvac-2", "ep:hvac-1"} }, testNow, nil},
		{"other device", func(c *token.Claims) { c.Audience = []string{"ep:hvac-2"} }, testNow, token.ErrWrongAudience},
		{"endpoint prefix only", func(c *token.Claims) { c.Audience = []string{"ep:hvac"} }, testNow, token.ErrWrongAudience},
		{"endpoint as device id", func(c *token.Claims) { c.Audience = []string{"id:hvac-1"} }, testNow, token.ErrWrongAudience},
		{"device id case differs", func(c *token.Claims) { c.Audience = []string{"id:0123456789ABCDEF0123456789ABCDEF"} }, testNow, token.ErrWrongAudience},
		{"bare name", func(c *token.Claims) { c.Audience = []string{"hvac-1"} }, testNow, token.ErrWrongAudience},
		{"expired within leeway", nil, testNow.Add(time.Hour + leeway), nil},
		{"expired", nil, testNow.Add(time.Hour + leeway + time.Second), token.ErrExpired},
		{"not yet valid within leeway", nil, testNow.Add(-time.Hour - leeway), nil},
		{"not yet valid", nil, testNow.Add(-time.Hour - leeway - time.Second), token.ErrNotYetValid},
		{"no time", nil, time.Time{}, token.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.mod != nil {
				tc.mod(&c)
			}
			err := c.Validate(token.Validation{Identity: id, Now: tc.now, Leeway: leeway})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	empty := token.Identity{}
	for _, aud := range []string{"ep:", "id:", "endpoint-name:", "device-id:"} {
		if empty.Matches(aud) {
			t.Errorf("empty identity matches %q", aud)
		}
	}
}
