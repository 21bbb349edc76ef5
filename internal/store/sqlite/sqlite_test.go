package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/audit"
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

// TestTwoHandlesOneFile: writers through two Stores on one file (as while a
// restarted server overlaps its predecessor) still form one unbroken chain,
// because BEGIN IMMEDIATE waits for the other's write lock.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envplane.db")
	var stores [2]*sqlite.Store
	for i := range stores {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	errc := make(chan error, 40)
	for w := range 4 {
		s := stores[w%2]
		wg.Go(func() {
			for i := range 10 {
				errc <- s.WithTx(t.Context(), func(tx store.Tx) error {
					_, err := audit.Append(t.Context(), tx, time.Now(), audit.Record{Actor: fmt.Sprint(w), Action: "test.write", Details: i})
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := audit.Verify(t.Context(), stores[0])
	if err != nil || !res.OK || res.Entries != 40 {
		t.Errorf("Verify = %+v, %v; want ok with 40 entries", res, err)
	}
}
