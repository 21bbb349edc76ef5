//go:build !unix

package sqlite

// fileLock is a no-op where flock is not available.
type fileLock struct{}

func lockDatabase(string) (*fileLock, error) { return &fileLock{}, nil }

func (l *fileLock) release() error { return nil }
