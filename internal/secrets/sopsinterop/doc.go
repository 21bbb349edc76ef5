// Package sopsinterop holds the tests that check envplane's secrets files
// against SOPS's own Go library (github.com/getsops/sops/v3), both ways.
// It is test-only: the library and the cloud SDKs it pulls in never link
// into the envplane binary (TestBinaryDoesNotLinkSOPS checks).
package sopsinterop
