package server

import "testing"

// The UI gets every path but the API's, OFREP's and the operations'.
func TestAPIPaths(t *testing.T) {
	for path, api := range map[string]bool{
		"/api": true, "/api/v1/releases": true, "/ofrep/v1/evaluate/flags": true, "/ofrep/v1/evaluate/flags/x": true,
		"/health/live": true, "/metrics": true,
		"/": false, "/login": false, "/matrix": false, "/apis": false, "/ofrepx": false,
	} {
		if got := apiPath(path); got != api {
			t.Errorf("apiPath(%q) = %v, want %v", path, got, api)
		}
	}
}
