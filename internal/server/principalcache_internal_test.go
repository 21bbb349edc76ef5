package server

import (
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/envplane/envplane/internal/auth"
)

// TestPrincipalCache: what is put is found (first under the lock, then in
// the lock-free snapshot), a put from before a clear is dropped, and
// readers racing writers see either nothing or the entry (go test -race).
func TestPrincipalCache(t *testing.T) {
	var c principalCache
	c.init()
	k := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	e := &principalEntry{p: auth.Principal{TokenID: "t1"}}

	got, unknown, gen := c.get(k("a"))
	if got != nil || unknown {
		t.Fatalf("empty cache: %v %v", got, unknown)
	}
	c.put(k("a"), e, gen)
	c.putUnknown(k("b"), gen)
	for i := 0; i < 4; i++ { // the misses of read promote dirty
		if got, _, _ := c.get(k("a")); got != e {
			t.Fatalf("get %d: %v", i, got)
		}
		if _, unknown, _ := c.get(k("b")); !unknown {
			t.Fatalf("get %d: b not remembered as unknown", i)
		}
	}
	if c.dirty != nil {
		t.Error("dirty was never promoted")
	}
	if got, _ := c.read.Load().lookup(k("a")); got != e {
		t.Error("the snapshot misses a")
	}

	_, _, stale := c.get(k("c"))
	changed := c.changed()
	c.clear()
	select {
	case <-changed:
	default:
		t.Error("clear did not signal a change")
	}
	c.put(k("c"), e, stale)
	c.putUnknown(k("d"), stale)
	for _, key := range []string{"a", "b", "c", "d"} {
		if got, unknown, _ := c.get(k(key)); got != nil || unknown {
			t.Errorf("%s after clear: %v %v", key, got, unknown)
		}
	}

	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				key := k(string(rune('a' + i%7)))
				if got, _, gen := c.get(key); got == nil {
					c.put(key, e, gen)
				}
				if i%500 == 0 {
					c.clear()
				}
			}
		}()
	}
	wg.Wait()
}
