package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/securedeviceaccess/sda/policy"
)

// Paths of the administration API the owner's app calls (docs/PROTOCOL.md
// section 12, "Revocations" and "Ledger").
const (
	revocationsPath  = policy.AdminPathPrefix + "revocations"
	issuedTokensPath = policy.AdminPathPrefix + "issued-tokens"
)

// maxAdminAnswer bounds what the owner's app reads of one answer of the
// administration API.
const maxAdminAnswer = 1 << 20

// owner is the building owner's administration app: it calls the
// administration API of the authorization service over HTTP with the
// owner's admin API key.
type owner struct {
	url    string // the service's base URL
	secret string // the admin API key secret
	http   *http.Client
}

// owner returns the owner's administration app for the service.
func (s *authService) owner() *owner {
	return &owner{url: s.url, secret: s.secrets[ownerSubject], http: newHTTPClient()}
}

// revokeSubject revokes every token of subject issued until now (POST
// /admin/v1/revocations, kind "subject") and returns the revocations that
// hold it.
func (o *owner) revokeSubject(ctx context.Context, subject, reason string) ([]*policy.Revocation, error) {
	body, err := json.Marshal(map[string]string{"kind": string(policy.RevokeSubject), "subject": subject, "reason": reason})
	if err != nil {
		return nil, err
	}
	var list struct {
		Data []*policy.Revocation `json:"data"`
	}
	return list.Data, o.call(ctx, http.MethodPost, revocationsPath, body, http.StatusCreated, &list)
}

// issued returns the ledger's records of the tokens issued to subject that
// have not expired (GET /admin/v1/issued-tokens?subject=...), at most one
// page.
func (o *owner) issued(ctx context.Context, subject string) ([]*policy.IssuedRecord, error) {
	var list struct {
		Data []*policy.IssuedRecord `json:"data"`
	}
	path := issuedTokensPath + "?" + url.Values{"subject": {subject}}.Encode()
	return list.Data, o.call(ctx, http.MethodGet, path, nil, http.StatusOK, &list)
}

// call sends one request of the administration API and decodes its JSON
// answer into out, which must have the status want.
func (o *owner) call(ctx context.Context, method, path string, body []byte, want int, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.secret)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer+1))
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: %w", method, path, err)
	case len(b) > maxAdminAnswer:
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxAdminAnswer)
	case resp.StatusCode != want:
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
