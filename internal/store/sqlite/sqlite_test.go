package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/store/storetest"
)

func TestStore(t *testing.T) {
	path := storetest.PerTest(func(t *testing.T) string {
		return filepath.Join(t.TempDir(), "envplane.db")
	})
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), path(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "envplane.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestOpenRefusesADirectory(t *testing.T) {
	if s, err := sqlite.Open(t.Context(), t.TempDir()); err == nil {
		s.Close()
		t.Fatal("Open(directory) succeeded")
	}
}

// TestSecondOpenRefused: two servers on one file would each serve their own
// stale view of it, so while one Store holds the file another Open fails,
// saying who holds it; Close hands the file over.
func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envplane.db")
	first, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := sqlite.Open(t.Context(), path)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a held database succeeded")
	}
	want := fmt.Sprintf("another envplane server (pid %d) holds the database %s", os.Getpid(), path)
	if !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), want) {
		t.Errorf("second Open = %v (kind %v); want a Conflict saying %q", err, errs.KindOf(err), want)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	third.Close()
}
