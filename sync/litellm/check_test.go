package litellm

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckMasterKeyAgainstFake(t *testing.T) {
	tests := []struct {
		name            string
		key             string
		down            bool
		wantUnauth      bool
		wantUnreachable bool
	}{
		{name: "the master key is accepted", key: testMasterKey},
		{name: "a wrong sk- key is rejected", key: "sk-wrong-000000000000", wantUnauth: true},
		{name: "a key that is not sk- is rejected", key: "master-key-without-prefix", wantUnauth: true},
		{name: "LiteLLM down", key: testMasterKey, down: true, wantUnreachable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newFakeEnv(t, tt.key)
			env.fake.SetDown(tt.down)
			err := env.client.CheckMasterKey(t.Context())
			if err != nil {
				assertNoSecret(t, "error", err.Error(), tt.key)
			}
			if got := errors.Is(err, ErrUnauthorized); got != tt.wantUnauth {
				t.Errorf("ErrUnauthorized = %v, want %v (err: %v)", got, tt.wantUnauth, err)
			}
			if got := errors.Is(err, ErrUnreachable); got != tt.wantUnreachable {
				t.Errorf("ErrUnreachable = %v, want %v (err: %v)", got, tt.wantUnreachable, err)
			}
			if !tt.wantUnauth && !tt.wantUnreachable && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			reqs := env.fake.Requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/user/info" || reqs[0].Query != "user_id="+checkUserID {
				t.Errorf("requests = %+v", reqs)
			}
		})
	}
}

func TestCheckMasterKeyAnswers(t *testing.T) {
	tests := []struct {
		name            string
		status          int
		body            string
		wantNil         bool
		wantUnauth      bool
		wantUnreachable bool
		wantMsg         string
	}{
		{name: "404 unknown user (v1.102)", status: 404, body: proxyErr("User teamgate-master-key-check not found", "internal_server_error", "None", "404"), wantNil: true},
		{name: "200 empty record (early-2025 releases)", status: 200, body: `{"user_id":"teamgate-master-key-check","user_info":null,"keys":[],"teams":[]}`, wantNil: true},
		{name: "401", status: 401, body: proxyErr("Authentication Error, Invalid proxy server token passed.", "auth_error", "None", "401"), wantUnauth: true, wantMsg: "check litellm.master_key"},
		{name: "403 from a non-admin key", status: 403, body: `{"detail":"key not allowed to access this user's info. user_id=x, key's user_id=y"}`, wantUnauth: true, wantMsg: "not the master key"},
		{name: "503", status: 503, body: "", wantUnreachable: true},
		{name: "400 something else", status: 400, body: detailErr("odd"), wantMsg: "unexpected answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := cannedLiteLLM(t, map[string][]canned{"/user/info": {{tt.status, tt.body, nil}}})
			c, err := New(srv.URL, testMasterKey)
			if err != nil {
				t.Fatal(err)
			}
			err = c.CheckMasterKey(t.Context())
			if (err == nil) != tt.wantNil {
				t.Fatalf("err = %v, want nil: %v", err, tt.wantNil)
			}
			if errors.Is(err, ErrUnauthorized) != tt.wantUnauth || errors.Is(err, ErrUnreachable) != tt.wantUnreachable {
				t.Errorf("err = %v; want unauthorized %v, unreachable %v", err, tt.wantUnauth, tt.wantUnreachable)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err %v does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestCheckMasterKeyUnreachableHost(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := New(strings.Replace(url, "http://", "http://user:pw@", 1), testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckMasterKey(t.Context())
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrTransient) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), ":pw@") {
		t.Errorf("error shows the URL's password: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name, url, key string
		opts           []Option
		wantErr        string
	}{
		{name: "ok", url: "http://litellm:4000", key: "sk-1"},
		{name: "ok with prefix", url: "https://example.com/litellm/", key: "sk-1"},
		{name: "relative", url: "litellm:4000", key: "sk-1", wantErr: "absolute http(s) URL"},
		{name: "no host", url: "http://", key: "sk-1", wantErr: "absolute http(s) URL"},
		{name: "query", url: "http://litellm/?x=1", key: "sk-1", wantErr: "query"},
		{name: "no key", url: "http://litellm", key: " ", wantErr: "master key is empty"},
		{name: "bad timeout", url: "http://litellm", key: "sk-1", opts: []Option{WithTimeout(0)}, wantErr: "timeout"},
		{name: "nil client", url: "http://litellm", key: "sk-1", opts: []Option{WithHTTPClient(nil)}, wantErr: "nil option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.url, tt.key, tt.opts...)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("New: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("New: %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), tt.key) && strings.TrimSpace(tt.key) != "" {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}
