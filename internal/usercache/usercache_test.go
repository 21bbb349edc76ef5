package usercache_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/envplane/envplane/internal/usercache"
)

func open(t *testing.T) (*usercache.Dir, string) {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"XDG_CACHE_HOME": dir, "HOME": dir, "LocalAppData": dir, "home": dir}
	return usercache.Open(func(k string) string { return env[k] }), dir
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func TestRoundTrip(t *testing.T) {
	c, dir := open(t)
	if _, ok := c.Get("k"); ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put("k", []byte("v1"))
	c.Put("k", []byte("v2"))
	if v, ok := c.Get("k"); !ok || string(v) != "v2" {
		t.Fatalf("Get = %q, %v; want v2", v, ok)
	}
	if _, ok := c.Get("other"); ok {
		t.Fatal("hit for another key")
	}
	if files := entries(t, dir); len(files) != 1 {
		t.Fatalf("files %v, want one entry and no temporary files", files)
	}
}

// TestCorruptIsMiss: a torn, altered or foreign file reads as a miss.
func TestCorruptIsMiss(t *testing.T) {
	c, dir := open(t)
	c.Put("k", []byte("value"))
	file := entries(t, dir)[0]
	data, _ := os.ReadFile(file)
	for name, bad := range map[string][]byte{
		"empty":   nil,
		"torn":    data[:len(data)-2],
		"altered": append(append([]byte{}, data[:len(data)-1]...), 'X'),
		"foreign": []byte("hello\n"),
	} {
		if err := os.WriteFile(file, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if v, ok := c.Get("k"); ok {
			t.Errorf("%s: hit %q", name, v)
		}
	}
}

// TestConcurrent: writers and readers of one key in parallel (run with
// -race) see either nothing or a whole value.
func TestConcurrent(t *testing.T) {
	c, _ := open(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if i%2 == 0 {
					c.Put("k", []byte("the value"))
				} else if v, ok := c.Get("k"); ok && string(v) != "the value" {
					t.Errorf("read %q", v)
				}
			}
		}()
	}
	wg.Wait()
}

func TestNoCacheDir(t *testing.T) {
	c := usercache.Open(func(string) string { return "" })
	if c != nil {
		t.Fatal("a cache without HOME or XDG_CACHE_HOME")
	}
	c.Put("k", []byte("v")) // a nil cache remembers nothing, quietly
	if _, ok := c.Get("k"); ok {
		t.Fatal("nil cache hit")
	}
	unwritable := usercache.Open(func(k string) string {
		return map[string]string{"XDG_CACHE_HOME": "/dev/null/x", "HOME": "/dev/null/x"}[k]
	})
	unwritable.Put("k", []byte("v"))
	if _, ok := unwritable.Get("k"); ok {
		t.Fatal("hit in an unwritable cache")
	}
}
