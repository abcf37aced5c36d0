package testregistry

import (
	"crypto/tls"
	"net/http"
	"testing"
)

func TestStartWithTLSAndAuth(t *testing.T) {
	r := Start(t, Options{TLS: true, Auth: true})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.CertPool}}}
	resp, err := client.Get(r.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous /v2/ = %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", r.URL()+"/v2/", nil)
	req.SetBasicAuth(r.User, r.Password)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authenticated /v2/ = %d", resp.StatusCode)
	}
}
