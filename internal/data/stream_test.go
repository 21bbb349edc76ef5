package data

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Tuples from several producers meet in one valid binary COPY stream, in
// bounded buffers, whatever the reader's pace.
func TestChunksMergeProducers(t *testing.T) {
	ctx := context.Background()
	cr := newChunks(ctx, 4)
	var want []string
	var wg sync.WaitGroup
	for p := 0; p < 3; p++ {
		for i := 0; i < 5000; i++ {
			want = append(want, fmt.Sprintf("p%d-%05d", p, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf, err := cr.get()
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 5000; i++ {
				var null []byte
				buf = appendTuple(buf, [][]byte{[]byte(fmt.Sprintf("p%d-%05d", p, i)), null})
				if len(buf) >= chunkSize {
					if err := cr.put(buf); err != nil {
						t.Error(err)
						return
					}
					if buf, err = cr.get(); err != nil {
						t.Error(err)
						return
					}
				}
			}
			if err := cr.put(buf); err != nil {
				t.Error(err)
			}
		}()
	}
	go func() { wg.Wait(); cr.close() }()
	in, err := newTupleReader(io.Reader(cr))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	fields := make([][]byte, 2)
	for {
		ok, err := in.next(fields)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if fields[1] != nil {
			t.Fatalf("NULL came back as %q", fields[1])
		}
		got = append(got, string(fields[0]))
	}
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tuples (-want +got):\n%s", diff)
	}
}

// A cancelled copy stops the writer's stream with the context's error.
func TestChunksCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cr := newChunks(ctx, 2)
	cancel()
	if _, err := cr.get(); err == nil {
		t.Error("get after cancel: no error")
	}
	b := make([]byte, 64)
	if _, err := io.ReadFull(cr, b[:19]); err != nil { // the header is already there
		t.Fatal(err)
	}
	if _, err := cr.Read(b); err != context.Canceled {
		t.Errorf("read after cancel: %v", err)
	}
}
